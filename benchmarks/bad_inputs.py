"""Issue 22's battery: bad or edge inputs across the verbs, each with its intended outcome.

Every case runs in-process through ``musicrfm.cli.main`` on random:tiny and tiny synthetic data
(0.1 s clips) in a temporary folder, and states what must happen: exit 2 with exactly one
``error:`` line matching a pattern (a traceback, a second line or exit 0 is a failure), or
success for inputs that are valid on purpose. After each case nothing may be left behind: no
``.part``/``.tmp`` file anywhere, and an error case leaves its folder exactly as it found it (no
partial output). Ctrl-C is simulated by making a step raise KeyboardInterrupt.

    python benchmarks/bad_inputs.py [--only SUBSTRING] [--fast] [-v]

Prints a table and "N cases, M behave as intended"; exits 1 if any case does not.
``tests/test_bad_inputs.py`` runs the cases marked fast.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GEN = "generate piano --model random:tiny --seconds 0.1"
LEFTOVER = re.compile(r"(\.part|\.tmp)$")
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING) ")


@dataclass
class Case:
    """One input. ``argv`` is a shell-like template: ``{t}`` is the case's own folder, ``{f}``
    the shared fixtures (see `make_fixtures`). ``expect`` is a regex the one ``error:`` line
    must match, or None for success. ``setup(t, f)`` writes the case's inputs; ``patch(t, f)``
    is a context manager around the run (a full disk, an interrupt); ``check(t, f, err)``
    returns a problem or None (for successes and interrupts)."""

    kind: str
    name: str
    argv: str
    expect: str | None
    code: int = 2
    setup: Callable[[Path, Path], None] | None = None
    patch: Callable[[Path, Path], Any] | None = None
    check: Callable[[Path, Path, str], str | None] | None = None
    fast: bool = False
    argparse: bool = False  # argparse's own usage line + one error line
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- fixtures


def make_fixtures(f: Path) -> None:
    """Shared inputs, made once: tiny directions (with and without an activation norm),
    FeatureSets, a dataset of sine clips, one generated clip with its sidecar."""
    import numpy as np
    import pandas as pd
    import soundfile as sf
    import torch

    from musicrfm.capture.features import FeatureSet
    from musicrfm.cli import main
    from musicrfm.probes.directions import ConceptDirections

    g = torch.Generator().manual_seed(1)
    v = torch.nn.functional.normalize(torch.randn(4, 3, 2, 64, generator=g), dim=-1)
    meta = {"model_id": "random:tiny:seed0", "num_layers": 4, "hidden_size": 64}
    for name, extra in (("dirs", {"activation_norm": 8.0}), ("dirs_nonorm", {})):
        cd = ConceptDirections(
            "notes", ["C", "D", "E"], v, torch.rand(4, 3, generator=g), [0, 1, 2, 3],
            meta={**meta, **extra},
        )  # fmt: skip
        cd.save(f / name / "notes")
    labels = ["C", "D", "E"] * 8
    FeatureSet(
        torch.randn(4, len(labels), 64, generator=g),
        pd.DataFrame({"path": [f"{i}.wav" for i in range(len(labels))], "label": labels}),
        meta={"num_layers": 4, "hidden_size": 64, "prompt": "", "model_id": "random:tiny:seed0"},
    ).save(f / "feats")
    few = ["C"] * 5 + ["D"] * 8
    FeatureSet(
        torch.randn(4, len(few), 64, generator=g),
        pd.DataFrame({"path": [f"{i}.wav" for i in range(len(few))], "label": few}),
    ).save(f / "feats_few")
    data = f / "data"
    data.mkdir()
    sr, rows = 32000, []
    for i, (label, hz) in enumerate([("C", 261.6), ("D", 293.7)] * 2):
        t = np.arange(int(0.1 * sr)) / sr
        sf.write(data / f"{i}.wav", 0.5 * np.sin(2 * np.pi * hz * t), sr)
        rows.append({"path": f"{i}.wav", "label": label})
    pd.DataFrame(rows).to_csv(data / "manifest.csv", index=False)
    sf.write(f / "empty.wav", np.zeros(0), sr)
    sf.write(f / "ms2.wav", 0.5 * np.sin(np.arange(64) / 5), sr)
    (f / "clip").mkdir()
    with quiet():
        assert main([*shlex.split(GEN), "--no-resume", "-o", str(f / "clip" / "x.wav")]) == 0
    (f / "notes.txt").write_text("not audio\n")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        yield


# ----------------------------------------------------------------------------- helpers for cases


def write(name: str, text: str | bytes) -> Callable[[Path, Path], None]:
    """A setup that writes ``text`` to ``{t}/name`` (``{f}`` in the text is the fixtures)."""

    def setup(t: Path, f: Path) -> None:
        path = t / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text.replace("{f}", str(f)).replace("{t}", str(t)))

    return setup


def copy(src: str, dst: str, change: Callable[[Path], None] | None = None):  # noqa: ANN201
    """A setup that copies fixture ``src`` to ``{t}/dst`` and then damages it with ``change``."""

    def setup(t: Path, f: Path) -> None:
        import shutil

        s, d = f / src, t / dst
        if s.is_dir():
            shutil.copytree(s, d)
        else:
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)
            if s.suffix == ".wav":  # a clip's sidecar travels with it
                shutil.copy2(s.with_suffix(".json"), d.with_suffix(".json"))
        if change:
            change(d)

    return setup


def both(*setups: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def setup(t: Path, f: Path) -> None:
        for s in setups:
            s(t, f)

    return setup


def sidecar(change: Callable[[dict], Any]) -> Callable[[Path, Path], None]:
    """A setup: the fixture clip's sidecar, changed (``change`` edits the dict in place)."""

    def setup(t: Path, f: Path) -> None:
        meta = json.loads((f / "clip" / "x.json").read_text())
        change(meta)
        (t / "s.json").write_text(json.dumps(meta))

    return setup


def plan(body: str) -> Callable[[Path, Path], None]:
    """A setup: ``{t}/plan.toml`` steering the fixture directions toward D, plus ``body``."""
    head = '[[direction]]\ndirections = "{f}/dirs/notes"\ntarget = "D"\ncoef = 1.0\n'
    return write("plan.toml", body if body.startswith("#raw\n") else head + body)


def files_in(t: Path) -> list[str]:
    return sorted(str(p.relative_to(t)) for p in t.rglob("*") if p.is_file())


def has(*names: str) -> Callable[[Path, Path, str], str | None]:
    def check(t: Path, f: Path, err: str) -> str | None:
        missing = [n for n in names if not (t / n).exists()]
        return f"missing {missing}" if missing else None

    return check


def same_audio(a: str, b: str) -> Callable[[Path, Path, str], str | None]:
    def check(t: Path, f: Path, err: str) -> str | None:
        pa, pb = (Path(x.format(t=t, f=f)) for x in (a, b))
        sa, sb = (json.loads(p.read_text()).get("audio_sha256") for p in (pa, pb))
        return None if sa and sa == sb else f"audio differs: {sa} vs {sb}"

    return check


@contextlib.contextmanager
def full_disk(t: Path, f: Path) -> Iterator[None]:
    from collections import namedtuple

    from musicrfm import files

    usage = namedtuple("usage", "total used free")
    real = files.shutil.disk_usage
    files.shutil.disk_usage = lambda p: usage(10, 10, 100)
    try:
        yield
    finally:
        files.shutil.disk_usage = real


def interrupt(target: str, after: int = 0) -> Callable[[Path, Path], Any]:
    """A patch: ``module:function`` raises KeyboardInterrupt on its call number ``after + 1``
    (the earlier calls run)."""
    module, name = target.split(":")

    @contextlib.contextmanager
    def patch(t: Path, f: Path) -> Iterator[None]:
        import importlib

        mod = importlib.import_module(module)
        real = getattr(mod, name)
        calls = {"n": 0}

        def wrapped(*a: Any, **k: Any) -> Any:
            calls["n"] += 1
            if calls["n"] > after:
                raise KeyboardInterrupt
            return real(*a, **k)

        setattr(mod, name, wrapped)
        try:
            yield
        finally:
            setattr(mod, name, real)

    return patch


@contextlib.contextmanager
def no_server(t: Path, f: Path) -> Iterator[None]:
    """serve's argument checks only: starting the studio or its server is a failure."""
    import musicrfm.studio.engine as engine
    import musicrfm.studio.server as server

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("serve got past its argument checks and started the studio")

    real = engine.Studio, server.run_server
    engine.Studio = server.run_server = refuse  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        engine.Studio, server.run_server = real


def resumed(first: str) -> Callable[[Path, Path, str], str | None]:
    """After an interrupt: the first clip is on disk, and the same command run again keeps it
    (same file, not regenerated) and finishes."""

    def check(t: Path, f: Path, err: str) -> str | None:
        from musicrfm.cli import main

        done = next(iter(sorted(t.glob(first))), t / first)
        if not done.exists():
            return f"the clip finished before Ctrl-C ({first}) was not kept"
        if "run the same command again" not in err:
            return "the message does not say how to resume"
        stamp = done.stat().st_mtime_ns
        argv = shlex.split(GEN) + ["--seed", "0", "1", "-o", str(t / "takes.wav")]
        with quiet():
            code = main(argv)
        if code != 0 or not list(t.glob("takes_001*.wav")):
            return f"the rerun exited {code} and wrote {files_in(t)}"
        return None if done.stat().st_mtime_ns == stamp else "the rerun regenerated the kept clip"

    return check


@contextlib.contextmanager
def read_only(t: Path, f: Path) -> Iterator[None]:
    """A read-only disk: writing the probe file `files.check_writable` makes fails with EROFS
    (``chmod`` does not stop root, so the refusal is simulated)."""
    import builtins
    import errno

    from musicrfm import files

    def refusing(path: Any, *a: Any, **k: Any) -> Any:
        if "write-probe" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return builtins.open(path, *a, **k)

    files.open = refusing  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del files.open  # type: ignore[attr-defined]


def synth_resumes(t: Path, f: Path, err: str) -> str | None:
    """After Ctrl-C in synth: the message says how to resume, and the same command finishes."""
    from musicrfm.cli import main

    if "run the same command again" not in err:
        return "the message does not say how to resume"
    with quiet():
        code = main(shlex.split(SYNTH.replace("{t}", str(t))))
    clips = list((t / "d").rglob("*.wav"))
    return None if code == 0 and len(clips) == 2 else f"rerun exited {code}, {len(clips)} clips"


# ----------------------------------------------------------------------------- the cases


def _cut(n: int | None, data: bytes | None = None) -> Callable[[Path], None]:
    def change(p: Path) -> None:
        p.write_bytes(data if data is not None else p.read_bytes()[:n])

    return change


def _in(name: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda folder: change(folder / name)


def _json_edit(edit: Callable[[dict], Any]) -> Callable[[Path], None]:
    def change(p: Path) -> None:
        d = json.loads(p.read_text())
        edit(d)
        p.write_text(json.dumps(d))

    return change


STEER = "--directions {f}/dirs/notes --target D"
D = "{t}/dirs/notes"  # a damaged copy of the directions
E = "extract --model random:tiny --no-progress --no-cache"
T = "train --no-progress --baselines none --budget fast"
SWEEP = (
    'model = "random:tiny"\nseconds = 0.1\nseeds = [0]\ncoefs = [1.0]\n[concepts.notes]\n'
    'directions = "{f}/dirs/notes"\ntargets = ["C"]\n'
)
SYNTH = "synth notes:C,D --octaves 4 --programs 0 --duration 0.1 --format wav --workers 1 "
SYNTH += "--no-progress --out {t}/d"
PKL = '{"model_type": "musicgen", "architectures": ["MusicgenForConditionalGeneration"]}'


def cases() -> list[Case]:
    c: list[Case] = []

    def add(kind: str, name: str, argv: str, expect: str | None, **kw: Any) -> None:
        c.append(Case(kind, name, argv, expect, **kw))

    # -- reproduce
    add("reproduce", "sidecar replays the clip", "generate --reproduce {f}/clip/x.json "
        "-o {t}/again.wav", None, code=0, check=same_audio("{f}/clip/x.json", "{t}/again.json"),
        fast=True)  # fmt: skip
    add(
        "reproduce",
        "sidecar not found",
        "generate --reproduce {t}/nope.json -o {t}/a.wav",
        r"nope\.json",
    )
    add(
        "reproduce",
        "sidecar not JSON",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        r"s\.json",
        setup=write("s.json", "{not json"),
        fast=True,
    )
    add(
        "reproduce",
        "sidecar empty",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        r"s\.json",
        setup=write("s.json", ""),
    )
    add(
        "reproduce",
        "sidecar a list",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        r"s\.json",
        setup=write("s.json", "[1, 2]"),
    )
    add(
        "reproduce",
        "sidecar without seed",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        r"s\.json.*seed|seed.*s\.json",
        setup=sidecar(lambda m: m.pop("seed")),
        fast=True,
    )
    add(
        "reproduce",
        "sidecar seed a word",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        "seed",
        setup=sidecar(lambda m: m.update(seed="abc")),
    )
    add(
        "reproduce",
        "sidecar without prompt",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        "prompt",
        setup=sidecar(lambda m: m.pop("prompt")),
    )
    add(
        "reproduce",
        "sidecar options a number",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        "s\\.json",
        setup=sidecar(lambda m: m.update(options=5)),
    )
    add(
        "reproduce",
        "sidecar plan a word",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        "plan",
        setup=sidecar(lambda m: m.update(plan="steer")),
    )
    add("reproduce", "verb: unknown table", "reproduce --model random:tiny --tables 99 "
        "--out {t}/r --work {t}/w", "table")  # fmt: skip
    add("reproduce", "verb: scale 0", "reproduce --model random:tiny --scale 0 --out {t}/r "
        "--work {t}/w", "scale")  # fmt: skip
    add("reproduce", "verb: unknown concept", "reproduce --model random:tiny --concepts timbre "
        "--out {t}/r --work {t}/w", "timbre")  # fmt: skip
    add("reproduce", "verb: protocol missing", "reproduce --model random:tiny --protocol "
        "{t}/p.toml --out {t}/r --work {t}/w", r"p\.toml")  # fmt: skip
    add(
        "reproduce",
        "verb: protocol garbage",
        "reproduce --model random:tiny --protocol {t}/p.toml --out {t}/r --work {t}/w",
        r"p\.toml",
        setup=write("p.toml", "= ="),
    )

    # -- outputs checked before the work
    add("outputs", "generate -o x.mp3", GEN + " -o {t}/x.mp3", r"\.wav or \.flac", fast=True)
    add(
        "outputs",
        "generate -o under a file",
        GEN + " -o {t}/afile/x.wav",
        "afile is a file",
        setup=write("afile", "x"),
        fast=True,
    )
    add("outputs", "generate 2 seeds to .mp3", GEN + " --seed 0 1 -o {t}/takes.mp3", "takes")
    add(
        "outputs",
        "generate -o existing folder",
        GEN + " -o {t}/out",
        None,
        code=0,
        setup=lambda t, f: (t / "out").mkdir(),
        check=lambda t, f, e: None if list((t / "out").glob("*.wav")) else "no clip in the folder",
    )
    add(
        "outputs",
        "generate on a full disk",
        GEN + " -o {t}/x.wav",
        "not enough disk space",
        patch=full_disk,
        fast=True,
    )
    add("outputs", "generate --save-plan .txt", GEN + f" {STEER} --save-plan {{t}}/p.txt "
        "-o {t}/x.wav", r"\.toml|\.json")  # fmt: skip
    add("outputs", "generate --save-plan under a file", GEN + f" {STEER} --save-plan "
        "{t}/afile/p.toml -o {t}/x.wav", "afile", setup=write("afile", "x"))  # fmt: skip
    add(
        "outputs",
        "train --out a file",
        T + " --features {f}/feats --out {t}/afile",
        "afile is a file",
        setup=write("afile", "x"),
        fast=True,
    )
    add(
        "outputs",
        "extract --out under a file",
        E + " --data {f}/data --out {t}/afile/o",
        "afile is a file",
        setup=write("afile", "x"),
    )
    add("outputs", "synth --out a file", "synth notes:C --duration 0.1 --no-progress "
        "--out {t}/afile", "afile", setup=write("afile", "x"))  # fmt: skip
    add(
        "outputs",
        "sweep --out a file",
        "sweep {t}/s.toml --out {t}/afile --no-progress",
        "afile",
        setup=both(write("afile", "x"), write("s.toml", SWEEP)),
    )
    add(
        "outputs",
        "evaluate mixes --out a file",
        "evaluate mixes --count 1 --out {t}/afile",
        "afile",
        setup=write("afile", "x"),
    )
    add("outputs", "table1 --out a file", "table1 --model random:tiny --out {t}/afile --work "
        "{t}/w --no-progress", "afile", setup=write("afile", "x"))  # fmt: skip
    add(
        "outputs",
        "report --out under a file",
        "report {t}/sw --out {t}/afile/r",
        "afile",
        setup=both(write("afile", "x"), write("sw/sweep.json", "{}")),
    )
    add("outputs", "evaluate instrument --out under a file", "evaluate instrument --data {f}/data "
        "--label label --out {t}/afile/clf", "afile", setup=write("afile", "x"))  # fmt: skip

    # -- interrupts (Ctrl-C simulated inside the work)
    add("interrupts", "Ctrl-C in 2-seed generate keeps clip 1", GEN + " --seed 0 1 -o "
        "{t}/takes.wav", "", code=130, patch=interrupt("musicrfm.steering.generation:_run_chunk", 1),
        check=resumed("takes_000*.wav"), fast=True)  # fmt: skip
    add("interrupts", "Ctrl-C in train says it does not resume", T + " --features {f}/feats "
        "--out {t}/o", "", code=130, patch=interrupt("musicrfm.probes.training:train_directions"),
        check=lambda t, f, e: None if "does not resume" in e else "message")  # fmt: skip
    add(
        "interrupts",
        "Ctrl-C in extract",
        E + " --data {f}/data --out {t}/o",
        "",
        code=130,
        patch=interrupt("musicrfm.capture.extract:extract_features"),
        check=lambda t, f, e: None if "resume" in e else "message",
    )

    # -- damaged files the tool wrote itself
    dirs = "--directions " + D + " --target D -o {t}/x.wav"
    for name, change in (
        ("truncated", _cut(100)),
        ("empty", _cut(None, b"")),
        ("garbage", _cut(None, b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!")),
    ):
        add("damaged", f"direction .safetensors {name}", f"{GEN} {dirs}",
            r"notes\.safetensors is damaged",
            setup=copy("dirs", "dirs", _in("notes.safetensors", change)),
            fast=name == "truncated")  # fmt: skip
    for name, change, says in (
        ("not JSON", _cut(None, b"{cut"), r"notes\.json"),
        ("empty", _cut(None, b""), r"notes\.json"),
        ("a list", _cut(None, b"[]"), r"notes\.json"),
        ("without classes", _json_edit(lambda d: d.pop("classes", None)), r"notes\.json"),
        ("classes a number", _json_edit(lambda d: d.update(classes=5)), r"notes\.json"),
    ):
        add(
            "damaged",
            f"direction JSON {name}",
            f"{GEN} {dirs}",
            says,
            setup=copy("dirs", "dirs", _in("notes.json", change)),
            fast=name == "not JSON",
        )
    add(
        "damaged",
        "direction JSON missing",
        f"{GEN} {dirs}",
        r"notes",
        setup=copy("dirs", "dirs", lambda d: (d / "notes.json").unlink()),
    )
    for name, file, data in (
        ("rows.parquet garbage", "rows.parquet", b"PAR1 cut short"),
        ("features.safetensors empty", "features.safetensors", b""),
        ("features.safetensors garbage", "features.safetensors", b"\x10\x00\x00\x00garbage"),
        ("meta.json garbage", "meta.json", b"{cut"),
    ):
        add("damaged", f"FeatureSet {name}", T + " --features {t}/fs --out {t}/o", "damaged|"
            + re.escape(file), setup=copy("feats", "fs", _in(file, _cut(None, data))),
            fast=name.startswith("rows"))  # fmt: skip
    add(
        "damaged",
        "FeatureSet features file missing",
        T + " --features {t}/fs --out {t}/o",
        "features",
        setup=copy("feats", "fs", lambda d: (d / "features.safetensors").unlink()),
    )
    add(
        "damaged",
        "sweep.json cut short",
        "report {t}/sw",
        r"sweep\.json is damaged",
        setup=write("sw/sweep.json", '{"format_version": 1, "conf'),
        fast=True,
    )
    add(
        "damaged",
        "sweep.json wrong fields",
        "report {t}/sw",
        r"sweep\.json is damaged",
        setup=write("sw/sweep.json", '{"format_version": 1, "config": 5, "concepts": []}'),
    )
    add(
        "damaged",
        "sweep.json empty",
        "report {t}/sw",
        r"sweep\.json",
        setup=write("sw/sweep.json", ""),
    )
    add(
        "damaged",
        "sweep folder without sweep.json",
        "report {t}/sw",
        r"sweep",
        setup=lambda t, f: (t / "sw").mkdir(),
    )
    add("damaged", "report on a missing folder", "report {t}/none", "none")

    # -- plan values of the wrong type
    bad_plans = [
        ("component word", 'component = "first"\n', "component must be an eigen"),
        ("seed word", '#raw\nseed = "abc"\n', "seed must be an integer"),
        ("format word", '#raw\nformat_version = "one"\n', "format_version must be an integer"),
        ("direction a number", "#raw\ndirection = 5\n", r"\[\[direction\]\] must be tables"),
        (
            "keyframe point of one",
            '[direction.schedule]\nkind = "keyframes"\npoints = [[1]]\n',
            "keyframe point",
        ),
        (
            "keyframe points flat",
            '[direction.schedule]\nkind = "keyframes"\npoints = [1, 2]\n',
            "keyframe point",
        ),
        ("layers counting down", 'layers = "3-1"\n', r"counts down"),
        ("gate word", 'gate = "x"\n', "gate probability must be a number"),
        ("top_k word", 'top_k = "a"\n', "top_k must be an integer"),
        ("rate word", '[direction.schedule]\nkind = "exp-decay"\nrate = "x"\n', "rate"),
        ("directions a number", "#raw\n[[direction]]\ndirections = 5\n", "directions must be"),
        (
            "coef a word",
            '#raw\n[[direction]]\ndirections = "{f}/dirs/notes"\ntarget = "D"\ncoef = "strong"\n',
            "coef",
        ),
        (
            "unknown target",
            '#raw\n[[direction]]\ndirections = "{f}/dirs/notes"\ntarget = "Q"\n',
            "Q",
        ),
        ("unknown schedule kind", '[direction.schedule]\nkind = "wobble"\n', "wobble"),
        ("layer out of range", 'layers = "99"\n', "99|layer"),
        ("invalid TOML", "#raw\n[[direction]\n", r"plan\.toml is not valid TOML"),
    ]
    for i, (name, body, says) in enumerate(bad_plans):
        add(
            "plan types",
            f"plan: {name}",
            GEN + " --plan {t}/plan.toml -o {t}/x.wav",
            says,
            setup=plan(body),
            fast=i % 3 == 0,
        )
    add(
        "plan types",
        "plan: not UTF-8",
        GEN + " --plan {t}/plan.toml -o {t}/x.wav",
        "is not UTF-8",
        setup=write("plan.toml", b"\xff\xfe seed = 1\n"),
        fast=True,
    )
    add("plan types", "plan: a folder", GEN + " --plan {t} -o {t}/x.wav", "is a folder")
    add("plan types", "plan: missing", GEN + " --plan {t}/no.toml -o {t}/x.wav", "not found")
    add(
        "plan types",
        "plan: .yaml",
        GEN + " --plan {t}/p.yaml -o {t}/x.wav",
        r"\.toml or \.json",
        setup=write("p.yaml", "a: 1"),
    )
    add("plan types", "plan: keyframe times '0.5s' (valid)", GEN + " --plan {t}/plan.toml -o "
        "{t}/x.wav", None, code=0, setup=plan('[direction.schedule]\nkind = "keyframes"\n'
        'points = [["0s", 1.0], ["0.05s", 0.5]]\n'), check=has("x.wav"))  # fmt: skip
    add("plan types", "plan: numeric name (valid)", GEN + " --plan {t}/plan.toml -o {t}/x.wav",
        None, code=0, setup=plan('#raw\nname = 5\n[[direction]]\ndirections = "{f}/dirs/notes"'
        '\ntarget = "D"\ncoef = 1.0\n'), check=has("x.wav"))  # fmt: skip

    # -- steering that would silently do nothing
    add(
        "silent steering",
        "schedule starts after the clip",
        f"{GEN} {STEER} --schedule linear-rise:start=100s -o {{t}}/x.wav",
        "nothing would be steered",
        fast=True,
    )
    add(
        "silent steering",
        "--layers 5-2",
        f"{GEN} {STEER} --layers 5-2 -o {{t}}/x.wav",
        r"counts down",
    )
    add(
        "silent steering",
        "empty plan",
        GEN + " --plan {t}/plan.toml -o {t}/x.wav",
        "would steer nothing",
        setup=write("plan.toml", ""),
    )
    add("silent steering", "keyframes all zero", f"{GEN} {STEER} --schedule keyframes:0=0,1s=0 "
        "-o {t}/x.wav", "nothing would be steered")  # fmt: skip
    add("silent steering", "duration 0", f"{GEN} {STEER} --schedule constant:duration=0 "
        "-o {t}/x.wav", "nothing would be steered|duration")  # fmt: skip
    add("silent steering", "--gate 0", f"{GEN} {STEER} --gate 0 -o {{t}}/x.wav", "gate")
    add(
        "silent steering",
        "--target without --directions",
        GEN + " --target D -o {t}/x.wav",
        "directions",
    )
    add("silent steering", "--directions without --target", GEN + " --directions "
        "{f}/dirs/notes -o {t}/x.wav", "target")  # fmt: skip

    # -- numbers
    add(
        "numbers",
        "--seconds 100000",
        GEN.replace("0.1", "100000") + " -o {t}/x.wav",
        "decoder steps.*positions",
        fast=True,
    )
    for s in ("0", "-1", "nan", "inf"):
        add("numbers", f"--seconds {s}", GEN.replace("0.1", s) + " -o {t}/x.wav", "seconds")
    add(
        "numbers",
        "--seed 2**70",
        GEN + f" --seed {2**70} -o {{t}}/x.wav",
        "out of range",
        fast=True,
    )
    add(
        "numbers",
        "--seed -1 (valid: torch's range)",
        GEN + " --seed -1 -o {t}/x.wav",
        None,
        code=0,
        check=has("x.wav"),
    )
    add("numbers", "--seed word", GEN + " --seed abc -o {t}/x.wav", "seed", argparse=True)
    for opt, val in (
        ("--guidance-scale", "-1"),
        ("--temperature", "-1"),
        ("--top-k", "-1"),
        ("--top-p", "2"),
        ("--batch", "0"),
        ("--gate", "1.5"),
        ("--gate", "-0.1"),
    ):
        add(
            "numbers",
            f"{opt} {val}",
            f"{GEN} {STEER} {opt} {val} -o {{t}}/x.wav",
            opt.strip("-").replace("-", "[-_ ]"),
        )
    add("numbers", "--coef nan", f"{GEN} {STEER} --coef nan -o {{t}}/x.wav", "coef")
    add("numbers", "--coef inf", f"{GEN} {STEER} --coef inf -o {{t}}/x.wav", "coef")
    add("numbers", "extract --max-seconds -1", E + " --data {f}/data --out {t}/o --max-seconds "
        "-1", "max_seconds", fast=True)  # fmt: skip
    add(
        "numbers",
        "extract --batch-size 0",
        E + " --data {f}/data --out {t}/o --batch-size 0",
        "batch_size",
    )
    add("numbers", "evaluate detectors --limit 0", "evaluate detectors --data {f}/data "
        "--limit 0 --no-progress", "limit", fast=True)  # fmt: skip
    add("numbers", "evaluate detectors --limit -1", "evaluate detectors --data {f}/data "
        "--limit -1 --no-progress", "limit")  # fmt: skip
    add("numbers", "evaluate audio: 0-sample WAV", "evaluate audio --concept notes "
        "{f}/empty.wav", r"empty\.wav.*(empty|no samples|0 samples)", fast=True)  # fmt: skip
    add(
        "numbers",
        "evaluate audio: 2 ms clip",
        "evaluate audio --concept notes {f}/ms2.wav",
        r"ms2\.wav.*(short|0\.05)",
    )
    add(
        "numbers",
        "train: 5 clips of a class",
        T + " --features {f}/feats_few --out {t}/o",
        r"at least 6 per class: 'C': 5",
    )
    add("numbers", "train --components 0", T + " --features {f}/feats --components 0 "
        "--out {t}/o", "components")  # fmt: skip
    add("numbers", "synth --duration -1", "synth notes:C --duration -1 --out {t}/d "
        "--no-progress", "duration")  # fmt: skip
    add("numbers", "synth --duration 0.001", "synth notes:C --duration 0.001 --out {t}/d "
        "--no-progress", "duration")  # fmt: skip
    add("numbers", "synth --limit-per-class 0", "synth notes:C --limit-per-class 0 --duration "
        "0.1 --out {t}/d --no-progress", "limit")  # fmt: skip
    add("numbers", "synth --sample-rate 0", "synth notes:C --sample-rate 0 --duration 0.1 "
        "--out {t}/d --no-progress", "sample")  # fmt: skip
    add("numbers", "synth --workers 0", "synth notes:C --workers 0 --duration 0.1 --out {t}/d "
        "--no-progress", "workers")  # fmt: skip
    add("numbers", "synth unknown label", "synth notes:H --duration 0.1 --out {t}/d "
        "--no-progress", "H")  # fmt: skip
    add("numbers", "table1 --clips-per-class 2", "table1 --model random:tiny --clips-per-class "
        "2 --out {t}/o --work {t}/w --no-progress", "6")  # fmt: skip
    add("numbers", "table1 --seconds -1", "table1 --model random:tiny --seconds -1 --out {t}/o "
        "--work {t}/w --no-progress", "seconds")  # fmt: skip
    add(
        "numbers",
        "mini train --steps 0",
        "mini train --steps 0 --out {t}/m --work-dir {t}/w",
        "steps",
    )
    add("numbers", "evaluate mixes --count 0", "evaluate mixes --count 0 --out {t}/m", "count")
    add(
        "numbers",
        "report --n-boot 0",
        "report {t}/sw --n-boot 0",
        "n.boot|boot",
        setup=write("sw/sweep.json", "{}"),
    )

    # -- devices
    verbs = {
        "generate": GEN + " -o {t}/x.wav",
        "extract": E + " --data {f}/data --out {t}/o",
        "train": T + " --features {f}/feats --out {t}/o",
        "table1": "table1 --model random:tiny --out {t}/o --work {t}/w --no-progress",
        "reproduce": "reproduce --model random:tiny --out {t}/r --work {t}/w",
        "serve": "serve --model random:tiny",
        "mini judge": "mini judge --model random:tiny --out {t}/j",
    }
    for i, (verb, argv) in enumerate(verbs.items()):
        for j, dev in enumerate(("tpu", "cuda:x", "cuda:99")):
            if j and verb in ("table1", "reproduce", "serve", "mini judge"):
                continue
            add("devices", f"{verb} --device {dev}", f"{argv} --device {dev}",
                r"device '?" + re.escape(dev), fast=(i + j) % 4 == 0,
                patch=no_server if verb == "serve" else None)  # fmt: skip
    add("devices", "generate --device foo", GEN + " --device foo -o {t}/x.wav", "device 'foo")

    # -- files and folders
    add("files", "--model pickle-only folder", GEN + " --model {t}/m -o {t}/x.wav",
        r"pytorch_model\.bin.*safetensors", setup=both(write("m/config.json", PKL),
        write("m/pytorch_model.bin", b"\x80\x04not really")), fast=True)  # fmt: skip
    add(
        "files",
        "--model folder without config.json",
        GEN + " --model {t}/m -o {t}/x.wav",
        "config.json",
        setup=write("m/model.safetensors", b""),
    )
    add(
        "files",
        "--model config.json garbage",
        GEN + " --model {t}/m -o {t}/x.wav",
        r"config\.json is not valid JSON",
        setup=write("m/config.json", "{cut"),
    )
    add("files", "--model unknown name", GEN + " --model ./nope -o {t}/x.wav", "nope")
    add("files", "--model random:huge", GEN + " --model random:huge -o {t}/x.wav", "huge")
    add("files", "--soundfont a folder", "synth notes:C --duration 0.1 --out {t}/d "
        "--no-progress --soundfont {t}/sf", "is a folder; give the .sf2",
        setup=lambda t, f: (t / "sf").mkdir(), fast=True)  # fmt: skip
    add("files", "--soundfont missing", "synth notes:C --duration 0.1 --out {t}/d "
        "--no-progress --soundfont {t}/no.sf2", r"no\.sf2")  # fmt: skip
    add("files", "--soundfont garbage", "synth notes:C --duration 0.1 --out {t}/d "
        "--no-progress --soundfont {t}/bad.sf2", r"bad\.sf2",
        setup=write("bad.sf2", b"RIFF garbage"))  # fmt: skip
    add(
        "files",
        "evaluate mixes --soundfont a folder",
        "evaluate mixes --count 1 --out {t}/m --soundfont {t}/sf",
        "is a folder",
        setup=lambda t, f: (t / "sf").mkdir(),
    )
    add(
        "files",
        "--directions missing",
        GEN + " --directions {t}/nope --target D -o {t}/x.wav",
        "nope",
        fast=True,
    )
    add("files", "--directions an empty folder", GEN + " --directions {t}/e --target D -o "
        "{t}/x.wav", "e", setup=lambda t, f: (t / "e").mkdir())  # fmt: skip
    add("files", "--directions a text file", GEN + " --directions {f}/notes.txt --target D -o "
        "{t}/x.wav", r"notes\.txt|notes")  # fmt: skip
    add("files", "extract --data missing", E + " --data {t}/none --out {t}/o", "none", fast=True)
    add(
        "files",
        "extract --data without manifest",
        E + " --data {t}/d --out {t}/o",
        "manifest",
        setup=lambda t, f: (t / "d").mkdir(),
    )
    add(
        "files",
        "extract manifest without path",
        E + " --data {t}/d --out {t}/o",
        "path",
        setup=write("d/manifest.csv", "label\nC\n"),
    )
    add(
        "files",
        "extract manifest names missing clips",
        E + " --data {t}/d --out {t}/o",
        r"0\.wav|missing|not found",
        setup=write("d/manifest.csv", "path,label\n0.wav,C\n"),
    )
    add(
        "files",
        "evaluate audio missing file",
        "evaluate audio --concept notes {t}/no.wav",
        r"no\.wav",
    )
    add(
        "files",
        "evaluate audio not audio",
        "evaluate audio --concept notes {f}/notes.txt",
        r"notes\.txt",
    )
    add("files", "train --features missing", T + " --features {t}/none --out {t}/o", "none")
    add(
        "files",
        "train --features a data folder",
        T + " --features {f}/data --out {t}/o",
        "features|FeatureSet",
    )
    add("files", "sweep config missing", "sweep {t}/no.toml --out {t}/o", r"no\.toml")
    add(
        "files",
        "sweep unknown concept",
        "sweep {t}/s.toml --out {t}/o --no-progress",
        "timbre",
        setup=write("s.toml", '[concepts.timbre]\ndirections = "x"\ntargets = ["a"]\n'),
    )
    add("files", "evaluate detectors --data missing", "evaluate detectors --data {t}/none "
        "--no-progress", "none")  # fmt: skip

    # -- relative coefficients
    add(
        "relative coefs",
        "--coef 0.1x (valid)",
        f"{GEN} {STEER} --coef 0.1x -o {{t}}/x.wav",
        None,
        code=0,
        check=has("x.wav"),
        fast=True,
    )
    add(
        "relative coefs",
        "--coef=-0.1x (valid)",
        f"{GEN} {STEER} --coef=-0.1x -o {{t}}/x.wav",
        None,
        code=0,
        check=has("x.wav"),
    )
    add("relative coefs", "--coef 0.1x without a norm", GEN + " --directions {f}/dirs_nonorm/"
        "notes --target D --coef 0.1x -o {t}/x.wav", "activation.norm|norm")  # fmt: skip
    add(
        "relative coefs",
        "--coef x",
        f"{GEN} {STEER} --coef x -o {{t}}/x.wav",
        "coef",
        argparse=True,
    )
    add(
        "relative coefs",
        "--coef 0.1y",
        f"{GEN} {STEER} --coef 0.1y -o {{t}}/x.wav",
        "coef",
        argparse=True,
    )
    add(
        "relative coefs",
        "--coef strong",
        f"{GEN} {STEER} --coef strong -o {{t}}/x.wav",
        "neither a number",
        argparse=True,
    )
    add("relative coefs", "plan coef '0.1x' (valid)", GEN + " --plan {t}/plan.toml -o {t}/x.wav",
        None, code=0, setup=plan('#raw\n[[direction]]\ndirections = "{f}/dirs/notes"\n'
        'target = "D"\ncoef = "0.1x"\n'), check=has("x.wav"))  # fmt: skip
    add("relative coefs", "plan coef '0.1x' without a norm", GEN + " --plan {t}/plan.toml -o "
        "{t}/x.wav", "norm", setup=plan('#raw\n[[direction]]\ndirections = '
        '"{f}/dirs_nonorm/notes"\ntarget = "D"\ncoef = "0.1x"\n'))  # fmt: skip

    # -- --threads
    thread_verbs = {
        "generate": GEN + " -o {t}/x.wav",
        "extract": E + " --data {f}/data --out {t}/o",
        "train": T + " --features {f}/feats --out {t}/o",
        "table1": "table1 --model random:tiny --out {t}/o --work {t}/w --no-progress",
        "reproduce": "reproduce --model random:tiny --out {t}/r --work {t}/w",
        "serve": "serve --model random:tiny",
        "mini gates": "mini gates --model random:tiny --no-card",
        "mini judge": "mini judge --model random:tiny --out {t}/j",
        "sweep": "sweep {t}/s.toml --out {t}/o --no-progress",
    }
    for i, (verb, argv) in enumerate(thread_verbs.items()):
        add(
            "threads",
            f"{verb} --threads 0",
            f"{argv} --threads 0",
            "threads must be at least 1",
            fast=i % 3 == 0,
            patch=no_server if verb == "serve" else None,
            setup=write("s.toml", SWEEP) if verb == "sweep" else None,
        )
    add("threads", "generate --threads -1", GEN + " --threads -1 -o {t}/x.wav", "threads")
    add(
        "threads",
        "generate --threads two",
        GEN + " --threads two -o {t}/x.wav",
        "threads",
        argparse=True,
    )
    add("threads", "generate --threads 2 (valid)", GEN + " --threads 2 -o {t}/x.wav", None,
        code=0, check=lambda t, f, e: None if json.loads((t / "x.json").read_text()).get(
            "torch_threads") == 2 else "sidecar does not record torch_threads = 2")  # fmt: skip

    # -- serve (argument checks only)
    for name, argv, says in (
        ("--port 0", "serve --model random:tiny --port 0", "port"),
        ("--port 70000", "serve --model random:tiny --port 70000", "port"),
        ("--directions missing", "serve --model random:tiny --directions {t}/nope", "nope"),
        ("--model missing", "serve --model {t}/nope", "nope"),
    ):
        add("serve", f"serve {name}", argv, says, patch=no_server, fast=name == "--port 0")

    # -- more: read-only disks, Ctrl-C in synth, a plan saved only once it is accepted
    ro = {
        "generate": GEN + " -o {t}/x.wav",
        "extract": E + " --data {f}/data --out {t}/o",
        "train": T + " --features {f}/feats --out {t}/o",
        "synth": SYNTH,
        "table1": "table1 --model random:tiny --out {t}/o --work {t}/w --no-progress",
        "evaluate mixes": "evaluate mixes --count 1 --out {t}/m",
    }
    for i, (verb, argv) in enumerate(ro.items()):
        add("outputs", f"{verb} on a read-only disk", argv, "Read-only file system",
            patch=read_only, fast=i == 0)  # fmt: skip
    add(
        "interrupts",
        "Ctrl-C in synth, then resume",
        SYNTH,
        "",
        code=130,
        patch=interrupt("musicrfm.synth.generate:_render_one", 1),
        check=synth_resumes,
    )
    add(
        "silent steering",
        "a refused plan is not saved",
        f"{GEN} {STEER} --schedule linear-rise:start=100s --save-plan {{t}}/p.toml -o {{t}}/x.wav",
        "nothing would be steered",
    )
    add("outputs", "--save-plan (valid)", f"{GEN} {STEER} --save-plan {{t}}/p.toml -o {{t}}/x.wav",
        None, code=0, check=has("p.toml", "x.wav"))  # fmt: skip
    add(
        "reproduce",
        "sidecar torch_threads a word",
        "generate --reproduce {t}/s.json -o {t}/a.wav",
        "torch_threads",
        setup=sidecar(lambda m: m.update(torch_threads="two")),
    )
    add(
        "reproduce",
        "--reproduce -o x.mp3",
        "generate --reproduce {f}/clip/x.json -o {t}/a.mp3",
        r"\.wav or \.flac",
    )
    add(
        "plan types",
        "plan: invalid JSON",
        GEN + " --plan {t}/p.json -o {t}/x.wav",
        r"p\.json is not valid JSON",
        setup=write("p.json", "{"),
    )
    add(
        "files",
        "train --label-column missing",
        T + " --features {f}/feats --label-column nope --out {t}/o",
        "nope",
    )

    # -- the verbs' own argument shapes
    add("usage", "mini unknown action", "mini bogus", "invalid choice", argparse=True)
    add("usage", "evaluate audio unknown concept", "evaluate audio --concept timbre "
        "{f}/ms2.wav", "timbre")  # fmt: skip
    add("usage", "synth without concepts", "synth --out {t}/d --no-progress", "concept")
    add("usage", "synth unknown concept", "synth timbre --out {t}/d --no-progress", "timbre")
    return c


# ----------------------------------------------------------------------------- running


@dataclass
class Result:
    case: Case
    ok: bool
    why: str
    seconds: float
    line: str


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def run_case(case: Case, t: Path, f: Path) -> Result:
    from musicrfm.cli import main

    t.mkdir(parents=True)
    if case.setup:
        case.setup(t, f)
    argv = [a.replace("{t}", str(t)).replace("{f}", str(f)) for a in shlex.split(case.argv)]
    before, fixtures = snapshot(t), snapshot(f)
    out, err = io.StringIO(), io.StringIO()
    for h in list(logging.root.handlers):  # basicConfig binds to the stderr of its first call
        logging.root.removeHandler(h)
    code: Any = None
    t0 = time.perf_counter()
    cwd = os.getcwd()
    os.chdir(t)
    try:
        patch = case.patch(t, f) if case.patch else contextlib.nullcontext()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), patch:
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code
    except BaseException as exc:  # noqa: BLE001 - a traceback is the failure we look for
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Result(case, False, f"traceback: {tb}", time.perf_counter() - t0, "")
    finally:
        os.chdir(cwd)
    seconds = time.perf_counter() - t0
    text = err.getvalue()
    lines = [ln for ln in text.splitlines() if ln.strip() and not LOG_LINE.match(ln)]
    errors = [ln for ln in lines if "error:" in ln]
    line = errors[0] if errors else (lines[-1] if lines else "")
    why = ""
    if code != case.code:
        why = f"exit {code}, wanted {case.code}"
    elif case.code == 2:
        if case.argparse:
            usage_ok = all(ln.startswith(("usage:", " ")) or "error:" in ln for ln in lines)
            if len(errors) != 1 or not usage_ok:
                why = f"not argparse's usage + one error line: {lines}"
        elif len(lines) != 1 or not lines[0].startswith("error: "):
            why = f"not exactly one error line: {lines}"
        if not why and case.expect and not re.search(case.expect, line):
            why = f"line does not match /{case.expect}/"
    leftovers = [p for p in [*files_in(t), *files_in(f)] if LEFTOVER.search(p)]
    if not why and leftovers:
        why = f"left behind: {leftovers}"
    if not why and case.code == 2 and snapshot(t) != before:
        changed = sorted(set(snapshot(t)) ^ set(before))
        why = f"the folder changed: {changed or 'a file was rewritten'}"
    if not why and snapshot(f) != fixtures and case.code != 0:
        why = "a shared input was changed"
    if not why and case.check:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            os.chdir(t)
            try:
                why = case.check(t, f, text) or ""
            except Exception as exc:  # noqa: BLE001
                why = f"check raised {type(exc).__name__}: {exc}"
            finally:
                os.chdir(cwd)
    return Result(case, not why, why, seconds, line or "(no output)")


def run_battery(
    selected: list[Case], root: Path | None = None, verbose: bool = False
) -> list[Result]:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bad-inputs-")))
        os.environ["MUSICRFM_CACHE_DIR"] = str(root / "cache")
        f = root / "fixtures"
        f.mkdir()
        make_fixtures(f)
        results = []
        for i, case in enumerate(selected):
            r = run_case(case, root / f"case{i:03d}", f)
            results.append(r)
            if verbose:
                mark = "ok " if r.ok else "BAD"
                print(f"{mark} {case.kind:15} {case.name:42} {r.seconds:5.1f}s  {r.why or r.line}")
        return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run the cases whose kind or name contains this")
    ap.add_argument("--fast", action="store_true", help="only the cases marked fast")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each case as it ends")
    args = ap.parse_args()
    selected = [
        c for c in cases()
        if (not args.fast or c.fast) and args.only.lower() in f"{c.kind} {c.name}".lower()
    ]  # fmt: skip
    results = run_battery(selected, verbose=args.verbose)
    print(f"\n{'kind':15} {'case':42} {'result':6} {'s':>5}  line / why")
    for r in results:
        shown = r.line if r.ok else r.why
        print(f"{r.case.kind:15} {r.case.name:42} {'ok' if r.ok else 'FAIL':6} "
              f"{r.seconds:5.1f}  {shown[:110]}")  # fmt: skip
    good = sum(r.ok for r in results)
    kinds = sorted({r.case.kind for r in results})
    print(f"\n{len(results)} cases, {good} behave as intended ({len(kinds)} kinds; "
          f"{sum(r.seconds for r in results):.0f} s)")  # fmt: skip
    return 0 if good == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
