"""`mini headline --concept intervals --interval-mode harmonic|melodic`: the mode reaches the
interval detector and the strike training set's filter, is recorded in the report and the
command, a bad one is one line before any model loads, and the verdict logic does not move."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from musicrfm.cli import main
from musicrfm.errors import ConfigError
from musicrfm.experiments.demo import DemoConfig, stages
from musicrfm.experiments.headline.config import HeadlineConfig, choose_coefs
from musicrfm.experiments.headline.tables import headline_table

SR = 16_000


# ----------------------------------------------------------------------------- the detector
def _fifth_together(seconds: float = 2.0) -> np.ndarray:
    """C4 and G4 (7 semitones) sounding together, four partials each."""
    t = np.arange(int(seconds * SR)) / SR
    y = sum(
        a / k * np.sin(2 * np.pi * k * f * t)
        for f in (261.63, 392.0)
        for k, a in zip(range(1, 5), (1.0, 0.6, 0.4, 0.3))
    )
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _record(audio: np.ndarray, target: str = "7", kind: str = "steady") -> dict:
    return {
        "condition": "concept", "kind": kind, "concept": "intervals", "target": target,
        "coef": 1.0, "prompt": "p", "seed": 0, "audio_path": "x.flac", "_audio": audio, "_sr": SR,
    }  # fmt: skip


def test_detect_notes_reads_a_held_fifth_as_7_only_in_the_harmonic_mode():
    """The finding the option rests on: by default (melodic) two notes held together are one
    "note" pair at unison; the harmonic reading hears the fifth."""
    rec = _record(_fifth_together())
    default = stages.detect_notes([rec], False, "intervals")[0].iloc[0]
    harmonic = stages.detect_notes([rec], False, "intervals", {"mode": "harmonic"})[0].iloc[0]
    assert harmonic["label"] == "7" and bool(harmonic["correct"])
    assert default["label"] != "7" and not bool(default["correct"])


def test_detect_notes_passes_its_options_to_every_clips_detector(monkeypatch):
    from musicrfm.evaluation import detectors as det

    seen: list[dict] = []
    real = det.detect

    def spy(audio, sr, concept, **options):
        seen.append(dict(options))
        return real(audio, sr, concept, **options)

    monkeypatch.setattr(det, "detect", spy)
    recs = [_record(_fifth_together(1.0)), _record(_fifth_together(1.0), "7->5", "crossfade")]
    stages.detect_notes(recs, False, "intervals", {"mode": "harmonic"})
    # a crossfade keeps its window options beside the mode
    assert seen == [{"mode": "harmonic"}, {"mode": "harmonic", "window_s": 0.5, "hop_s": 0.25}]
    seen.clear()
    stages.detect_notes(recs[:1], False, "intervals")
    assert seen == [{}]  # no options: the detector's default, as before


def test_the_config_gives_the_detector_its_mode():
    assert HeadlineConfig(concept="intervals").detect_options() == {}
    for mode in ("harmonic", "melodic"):
        cfg = HeadlineConfig(concept="intervals", interval_mode=mode)
        cfg.validate()
        assert cfg.detect_options() == {"mode": mode}


# ----------------------------------------------------------------------- the training set
def _strike_clips(monkeypatch, tmp_path: Path, mode: str | None, per_class: int = 5):
    """The strike clips :func:`strike_dataset` would render (rendering stubbed out)."""
    import musicrfm.synth.generate as generate
    import musicrfm.synth.strikes as strikes

    clips, folders = [], []
    real_spec = strikes.strike_spec
    monkeypatch.setattr(strikes, "strike_spec", lambda c, **k: clips.append(c) or real_spec(c, **k))
    monkeypatch.setattr(generate, "render_specs", lambda specs, folder, **k: folders.append(folder))
    adapter = SimpleNamespace(sample_rate=SR)
    cfg = replace(DemoConfig.quick(), clips_per_class=per_class)
    stages.strike_dataset(adapter, cfg, tmp_path, 0, False, "intervals", mode)
    return clips, folders[0]


@pytest.mark.parametrize(
    ("mode", "kept"),
    [("harmonic", {"harmonic"}), ("melodic", {"up", "down"}), (None, {"harmonic", "up", "down"})],
)
def test_the_strike_set_keeps_only_the_modes_intervals(monkeypatch, tmp_path, mode, kept):
    clips, folder = _strike_clips(monkeypatch, tmp_path, mode, per_class=12)
    assert {c.interval_mode for c in clips} == kept
    # still every size 1..12, as many clips of each
    assert Counter(c.label for c in clips) == {str(s): 12 for s in range(1, 13)}
    # a mode's set has its own cache folder; without one the folder is the one it always was
    suffix = "" if mode is None else f"_{mode}"
    assert folder == tmp_path / f"strike_intervals{suffix}_{SR}hz_12pc_seed0"


def test_a_mode_is_only_for_the_interval_strike_set(monkeypatch, tmp_path):
    adapter, cfg = SimpleNamespace(sample_rate=SR), DemoConfig.quick()
    with pytest.raises(ConfigError, match="interval mode"):
        stages.strike_dataset(adapter, cfg, tmp_path, 0, False, "chords", "harmonic")
    with pytest.raises(ConfigError, match="interval mode"):
        stages.strike_dataset(adapter, cfg, tmp_path, 0, False, "intervals", "up")


# ---------------------------------------------------------------------------- bad modes
def test_bad_modes_are_config_errors():
    with pytest.raises(ConfigError, match="harmonic, melodic"):
        HeadlineConfig(concept="intervals", interval_mode="sideways").validate()
    with pytest.raises(ConfigError, match="for --concept intervals"):
        HeadlineConfig(concept="chords", interval_mode="harmonic").validate()


def _no_model(monkeypatch):
    import musicrfm.models as models

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the mode was checked")

    monkeypatch.setattr(models, "load_model", refuse)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--concept", "intervals", "--interval-mode", "sideways"], "harmonic, melodic.*sideways"),
        (["--concept", "chords", "--interval-mode", "harmonic"], "for --concept intervals"),
        (["--interval-mode", "harmonic"], "for --concept intervals, not 'notes'"),
    ],
)
def test_the_cli_rejects_a_bad_mode_in_one_line_before_loading(monkeypatch, capsys, tmp_path,
                                                               argv, match):  # fmt: skip
    import re

    _no_model(monkeypatch)
    code = main(["mini", "headline", "--model", "random:tiny", "--out", str(tmp_path), *argv])
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("INFO")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert re.search(match, err[0]), err[0]


def test_run_headline_rejects_a_bad_mode_before_loading(monkeypatch, tmp_path):
    from musicrfm.experiments.headline.run import run_headline

    _no_model(monkeypatch)
    cfg = HeadlineConfig.quick(concept="intervals", interval_mode="sideways")
    with pytest.raises(ConfigError, match="interval mode"):
        run_headline(model="random:tiny", out=tmp_path / "o", config=cfg, progress=False)


# ----------------------------------------------------------------- the CLI's plumbing
def _cli_config(monkeypatch, tmp_path, *extra: str) -> tuple[HeadlineConfig, str]:
    """The config and recorded command `mini headline` hands to run_headline (stubbed)."""
    import musicrfm.experiments.headline as headline
    import musicrfm.models as models

    got: dict = {}

    def fake_run(**kw):
        got.update(kw)
        Path(kw["out"]).mkdir(parents=True, exist_ok=True)
        (Path(kw["out"]) / "headline.md").write_text("stub\n")
        return {"overall": {"passed": False}}

    monkeypatch.setattr(models, "load_model", lambda *a, **k: SimpleNamespace(local_path=None))
    monkeypatch.setattr(headline, "run_headline", fake_run)
    argv = ["mini", "headline", "--model", "m", "--concept", "intervals", "--out",
            str(tmp_path / "o"), "--train-set", "strikes", *extra]  # fmt: skip
    assert main(argv) == 1  # the stub's verdict: failed
    return got["config"], got["command"]


def test_the_cli_hands_the_mode_on_and_records_it(monkeypatch, tmp_path):
    cfg, command = _cli_config(monkeypatch, tmp_path, "--interval-mode", "harmonic")
    assert cfg.interval_mode == "harmonic" and cfg.data.train_set == "strikes"
    assert "--train-set strikes --interval-mode harmonic" in command


def test_without_the_option_the_headline_is_the_one_it_was(monkeypatch, tmp_path):
    cfg, command = _cli_config(monkeypatch, tmp_path)
    assert cfg.interval_mode is None and cfg.detect_options() == {}
    assert "--interval-mode" not in command


# ------------------------------------------------------------------ the whole pipeline
def test_the_mode_reaches_the_training_set_both_detections_and_the_report(monkeypatch, tmp_path):
    """A quick interval headline on a random tiny model: the strike set it trains on is
    harmonic only, both phases' clips are read in harmonic mode, and headline.json says so."""
    import musicrfm.synth.strikes as strikes
    from musicrfm.experiments.headline import run as headline_run

    modes: list[str | None] = []
    real_spec = strikes.strike_spec
    monkeypatch.setattr(
        strikes, "strike_spec", lambda c, **k: modes.append(c.interval_mode) or real_spec(c, **k)
    )
    options: list[dict | None] = []
    real_detect = headline_run.detect_notes

    def spy(records, progress, concept="notes", opts=None):
        options.append(opts)
        return real_detect(records, progress, concept, opts)

    monkeypatch.setattr(headline_run, "detect_notes", spy)
    data = replace(
        DemoConfig.quick(), clips_per_class=6, prompts=("acoustic piano",), seconds=0.5,
        instrument_check=False, train_set="strikes",
    )  # fmt: skip
    cfg = HeadlineConfig.quick(
        concept="intervals", targets=("7", "5"), clips=2, baseline_clips=2, relative_coefs=(0.5,),
        data=data, interval_mode="harmonic",
    )  # fmt: skip
    record = run_headline_quick(tmp_path, cfg)
    assert modes and set(modes) == {"harmonic"}
    assert options == [{"mode": "harmonic"}, {"mode": "harmonic"}]  # phase 1, then the controls
    saved = json.loads((tmp_path / "out" / "headline.json").read_text())
    assert saved == record
    assert saved["settings"]["interval_mode"] == "harmonic"
    assert saved["settings"]["detect_options"] == {"mode": "harmonic"}
    assert saved["settings"]["config"]["interval_mode"] == "harmonic"
    labels = pd.read_csv(tmp_path / "out" / "results.csv")["label"].astype(str)
    # the harmonic reading names 1..12 (a unison reads 12) or silence, never the melodic "0"
    assert set(labels) <= {*map(str, range(1, 13)), "silent"}


def run_headline_quick(tmp_path: Path, cfg: HeadlineConfig) -> dict:
    from musicrfm.experiments.headline.run import run_headline

    return run_headline(
        model="random:tiny", out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        progress=False,
    )  # fmt: skip


# ----------------------------------------------------------------------- the verdict
def _interval_frame(hit: float, flip_to_target: bool = False) -> pd.DataFrame:
    """An interval headline's labelled clips (sizes; no class probabilities)."""
    sizes, targets = ("4", "3", "8", "6"), ("4", "3")

    def rows(condition, target, coef, labels):
        return [
            {"condition": condition, "target": target, "coef": coef, "label": lab,
             "probs": [float("nan")] * 4, "prompt": f"p{i % 4}", "seed": i // 4,
             "instrument_match": 1.0}
            for i, lab in enumerate(labels)
        ]  # fmt: skip

    data = rows("unsteered", "4", 0.0, [sizes[i % 4] for i in range(24)])
    for t in targets:
        n = int(round(hit * 10))
        data += rows("concept", t, 5.0, [t] * 3 + ["8"] * 7)
        data += rows("concept", t, 10.0, [t] * n + ["8"] * (10 - n))
        for kind in ("random", "orthogonal"):
            data += rows(kind, t, 10.0, [t] * 2 + ["8"] * 8)
        data += rows("flip", t, 10.0, [t] * 10 if flip_to_target else ["6"] * 10)
    return pd.DataFrame(data)


@pytest.mark.parametrize(("hit", "flip_to_target", "passed"),
                         [(0.9, False, True), (0.5, False, False), (0.9, True, False)])  # fmt: skip
def test_the_verdict_does_not_depend_on_the_mode(hit, flip_to_target, passed):
    """The mode changes how clips are read, not how the read labels are judged: the same labels
    give the same η0 choice, table and verdict in every mode (and the verdict still fails)."""
    frame = _interval_frame(hit, flip_to_target)
    base = HeadlineConfig(concept="intervals", targets=("4", "3"), clips=10, flip_clips=10,
                          baseline_clips=24)  # fmt: skip
    results = []
    for mode in (None, "harmonic", "melodic"):
        cfg = replace(base, interval_mode=mode)
        table, overall = headline_table(frame, cfg)
        assert overall["passed"] is passed
        # NaN cells compare equal as JSON text
        results.append(json.dumps([choose_coefs(frame, cfg), table.to_dict("records"), overall],
                                  sort_keys=True, default=str))  # fmt: skip
    assert results[1:] == [results[0]] * 2
