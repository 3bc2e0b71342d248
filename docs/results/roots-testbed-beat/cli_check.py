"""The musician's command, as written, with the bundled chord directions: `musicrfm generate
PROMPT --model mini-beat --chords "C G Am F" --bpm BPM --directions .../chords .../chord-roots
--coef 0.3x` (4/4 bars, the CLI's defaults) for the demo's 8 prompts x SEEDS, unsteered and
steered, each bar judged by the chord detector (`demo.progression.judge_bars`).

    python docs/results/roots-testbed-beat/cli_check.py OUT_FOLDER [BPM]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from musicrfm.experiments.demo.config import DemoConfig
from musicrfm.experiments.demo.progression import bar_scores, judge_bars
from musicrfm.steering.progressions import make_progression

CHORDS, SEEDS = "C G Am F", ("0", "1000")
DIRS = [
    "models/musicgen-mini-beat/directions/chords",
    "models/musicgen-mini-beat/directions/chord-roots",
]


def main(out: Path, bpm: str = "120") -> None:
    prog = make_progression(chords=CHORDS, bpm=bpm)  # the CLI's defaults: 4/4, a bar a chord
    result = {"chords": CHORDS, "bpm": bpm, "seeds": SEEDS, "seconds": prog.seconds, "runs": {}}
    for cond in ("unsteered", "steered"):
        bars = []
        for i, prompt in enumerate(DemoConfig().prompt_texts()):
            folder = out / cond / f"p{i}"
            cmd = [sys.executable, "-m", "musicrfm", "generate", prompt, "--model", "mini-beat",
                   "--seconds", f"{prog.seconds:g}", "--seed", *SEEDS, "--batch", "2",
                   "--threads", "1", "-o", str(folder)]  # fmt: skip
            if cond == "steered":
                cmd += ["--chords", CHORDS, "--bpm", bpm, "--directions", *DIRS, "--coef", "0.3x"]
            subprocess.run(cmd, check=True, capture_output=True)
            for wav in sorted(folder.glob("*.wav")):
                y, sr = sf.read(wav, dtype="float32")
                bars.append(judge_bars(y, sr, prog))
        result["runs"][cond] = bar_scores(bars, 0)
        s = result["runs"][cond]
        print(cond, "quality", round(s["quality"]["value"], 2), "root+quality",
              round(s["chord"]["value"], 2), s["chord"]["ci"], flush=True)  # fmt: skip
    (out / "cli_check.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
