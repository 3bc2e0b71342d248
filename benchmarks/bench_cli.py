"""How long `musicrfm --help` and `musicrfm evaluate audio` take, against the interpreter itself.

Both should cost about as much as starting Python and importing NumPy (neither imports torch nor
transformers; tests/test_architecture.py checks that). The baseline, measured in the same run on
the same machine, is ``python -c "import numpy"``; the ratio is what to compare across machines.

    python benchmarks/bench_cli.py [--repeats 5] [--old-src /path/to/an/older/checkout/src]

``--old-src`` times the same commands with another checkout's package first on ``sys.path``
(for a before/after figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(cmd: list[str], env: dict[str, str] | None = None, repeats: int = 5) -> float:
    """Median wall time of ``cmd`` in seconds (one warm-up run first)."""
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tone(path: Path) -> Path:
    import numpy as np
    import soundfile as sf

    sr = 16000
    t = np.arange(2 * sr) / sr
    sf.write(path, 0.5 * np.sin(2 * np.pi * 392.0 * t), sr)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--old-src", default=None, help="an older checkout's src folder to compare")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        wav = str(tone(Path(tmp) / "g.wav"))
        commands = {
            "musicrfm --help": [py, "-m", "musicrfm", "--help"],
            "musicrfm evaluate audio": [
                py,
                "-m",
                "musicrfm",
                "evaluate",
                "audio",
                wav,
                "--concept",
                "notes",
            ],
        }
        base = wall([py, "-c", "import numpy"], repeats=args.repeats)
        print(f"baseline python -c 'import numpy': {base:.2f} s")
        for name, cmd in commands.items():
            now = wall(cmd, repeats=args.repeats)
            line = f"{name:26s} {now:6.2f} s  = {now / base:5.1f} x baseline"
            if args.old_src:
                env = dict(os.environ, PYTHONPATH=args.old_src)
                old = wall(cmd, env=env, repeats=args.repeats)
                line += f"   (old: {old:.2f} s = {old / base:.1f} x; old / new = {old / now:.1f})"
            print(line)


if __name__ == "__main__":
    main()
