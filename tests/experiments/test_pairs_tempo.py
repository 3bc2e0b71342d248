"""`musicrfm mini pairs` with a tempo part: 'faster' / 'slower' targets (one-line errors
otherwise), the per-clip 20% bar against the unsteered median BPM (both ways, at and just short
of the bar, silent clips), joint / cross-talk / controls on hand-made BPMs, and the pipeline on
a random tiny MusicGen with the tempo direction trained as the tempo headline trains it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.pairs.config import PairsConfig, PartSpec
from musicrfm.experiments.pairs.scoring import (
    ALONE,
    JOINT,
    UNSTEERED,
    attribute_hits,
    control_rows,
    crosstalk_rows,
    pair_rows,
    pair_verdict,
    tempo_label,
    tempo_labels,
    tempo_rows,
    tempo_threshold,
)
from musicrfm.theory import PITCH_CLASSES

NOTE_TEMPO = dict(first=PartSpec("notes"), second=PartSpec("tempos"))


def test_tempo_targets_are_faster_or_slower_and_errors_are_one_line():
    cfg = PairsConfig(**NOTE_TEMPO, pairs=(("A", "Faster"), ("Db", "slower"))).normalized()
    cfg.validate()
    assert cfg.pairs == (("A", "faster"), ("C#", "slower")) and cfg.conflict == ("C", "G")
    chords = PairsConfig(first=PartSpec("chords"), second=PartSpec("tempos"),
                         pairs=(("augmented", "Slower"),), conflict=None).normalized()  # fmt: skip
    chords.validate()
    assert chords.pairs == (("augmented", "slower"),)
    for changes, match in (
        (dict(pairs=(("A", "fast"),)), "'fast' is not a tempo target; valid: faster, slower"),
        (dict(pairs=(("A", "up"),)), "valid: faster, slower"),
        (dict(pairs=(("faster", "A"),)), "faster"),  # the parts' order matters
        (
            dict(second=PartSpec("notes"), first=PartSpec("tempos"), pairs=(("faster", "A"),)),
            "conflict case .* note/chord-only",
        ),  # fmt: skip
        (dict(tempo_change=1.0), "tempo_change"),
    ):
        with pytest.raises(ConfigError, match=match) as info:
            PairsConfig(**NOTE_TEMPO, pairs=(("A", "faster"),)).with_changes(**changes).normalized().validate()  # fmt: skip
        assert "\n" not in str(info.value)
    # tempo first is fine without the conflict case
    PairsConfig(first=PartSpec("tempos"), second=PartSpec("notes"), pairs=(("slower", "A"),),
                conflict=None).normalized().validate()  # fmt: skip


def test_the_per_clip_bar_is_20_percent_of_the_unsteered_median_both_ways():
    t = tempo_threshold([90.0, 100.0, 100.0, 110.0, np.nan], 0.2)
    assert t["unsteered_median_bpm"] == 100.0 and (t["unsteered_n"], t["unsteered_with_bpm"]) == (5, 4)  # fmt: skip
    assert t["faster_at_least_bpm"] == pytest.approx(120.0)
    assert t["slower_at_most_bpm"] == pytest.approx(80.0)
    got = [tempo_label(b, t) for b in (120.0, 119.9, 180.0, 80.0, 80.1, 40.0, 100.0, np.nan)]
    assert got == ["faster", "unchanged", "faster", "slower", "unchanged", "slower",
                   "unchanged", "silent"]  # fmt: skip
    assert tempo_label(120.0, tempo_threshold([np.nan, np.nan], 0.2)) == "no baseline"
    frame = pd.DataFrame({"condition": [UNSTEERED] * 3 + ["joint"] * 3, "pair": [""] * 3 + ["x"] * 3,
                          "bpm": [100, 100, 100, 125, 95, np.nan]})  # fmt: skip
    labelled, used = tempo_labels(frame, 0.2)
    assert used["faster_at_least_bpm"] == pytest.approx(120.0)
    assert labelled["tempo"].tolist() == ["unchanged"] * 3 + ["faster", "unchanged", "silent"]
    assert attribute_hits(labelled, "tempos", "faster").tolist() == [0, 0, 0, 1, 0, 0]
    assert attribute_hits(labelled, "tempos", "slower").sum() == 0
    with pytest.raises(ConfigError, match="bpm"):
        tempo_labels(frame.drop(columns="bpm"), 0.2)


def _frame(cells: dict[str, list[tuple[str, float]]], pair: str = "A+slower") -> pd.DataFrame:
    rows = [{"condition": c, "pair": "" if c == UNSTEERED else pair, "note": n, "bpm": b}
            for c, clips in cells.items() for n, b in clips]  # fmt: skip
    return tempo_labels(pd.DataFrame(rows), 0.2)[0]


def test_joint_crosstalk_and_controls_with_a_tempo_part():
    cells = {
        # unsteered: median 120 BPM (bars: faster >= 144, slower <= 96); A 1/10
        UNSTEERED: [("A", 120.0)] + [("C", 120.0)] * 5 + [("C", 100.0)] * 2 + [("C", 140.0)] * 2,
        # the note alone: A 9/10, and no tempo moves past the bar (no cross-talk)
        ALONE[0]: [("A", 118.0)] * 9 + [("C", 125.0)],
        # tempo alone (slower): 9/10 at <= 96 BPM, one clip silent; A stays 1/10
        ALONE[1]: [("C", 80.0)] * 8 + [("A", 90.0), ("C", np.nan)],
        # joint: A 8/10, slower 9/10, both in 7/10
        JOINT: [("A", 70.0)] * 7 + [("A", 110.0), ("C", 90.0), ("C", 60.0)],
        "joint-flip": [("C", 170.0)] * 10,
    }
    frame = _frame(cells)
    pair, concepts = ("A", "slower"), ("notes", "tempos")
    rows = {r["condition"]: r for r in pair_rows(frame, pair, concepts, (UNSTEERED, *ALONE, JOINT))}  # fmt: skip
    assert (rows[JOINT]["first_k"], rows[JOINT]["second_k"], rows[JOINT]["joint_k"]) == (8, 9, 7)
    assert rows[ALONE[1]]["second_k"] == 9 and rows[UNSTEERED]["second_k"] == 0
    v = pair_verdict(list(rows.values()), joint_gate=0.7, alone_gate=0.8)
    assert v["applies"] and v["passed"] and v["second_moved"]
    # one joint clip's tempo just short of the bar (97 > 96 BPM): joint 6/10, a fail
    worse = frame.copy()
    worse.loc[worse.index[worse["condition"] == JOINT][0], "bpm"] = 97.0
    worse = tempo_labels(worse.drop(columns="tempo"), 0.2)[0]
    w = pair_verdict(pair_rows(worse, pair, concepts, (UNSTEERED, *ALONE, JOINT)),
                     joint_gate=0.7, alone_gate=0.8)  # fmt: skip
    assert w["joint"] == pytest.approx(0.6) and w["passed"] is False

    talk = {r["steered"]: r for r in crosstalk_rows(frame, pair, concepts, seed=0)}
    on_tempo, on_note = talk["notes -> A"], talk["tempos -> slower"]
    assert on_tempo["measured"] == "tempos = slower" and on_tempo["diff"] == 0
    assert on_tempo["bpm"]["median_bpm"] == 118.0 and on_tempo["bpm"]["unsteered_median_bpm"] == 120.0  # fmt: skip
    lo, hi = on_tempo["bpm"]["change_ci"]
    assert lo <= on_tempo["bpm"]["change"] <= hi
    assert on_note["measured"] == "notes = A" and on_note["within_ci"] and on_note["bpm"] is None

    (flip,) = control_rows(frame, pair, concepts, ("flip",))
    assert flip["second_diff"] == 0 and flip["joint_not_above"]
    t = tempo_threshold(frame.loc[frame["condition"] == UNSTEERED, "bpm"], 0.2)
    by = {r["condition"]: r for r in tempo_rows(frame, pair, t, (UNSTEERED, ALONE[1], "joint-flip"))}  # fmt: skip
    assert by[ALONE[1]]["slower"]["k"] == 9 and by[ALONE[1]]["bpm"]["silent"] == 1
    assert by["joint-flip"]["faster"]["k"] == 10 and by["joint-flip"]["bpm"]["change"] > 0.4
    assert by[UNSTEERED]["bpm"]["change"] == 0


def test_score_records_the_bar_and_the_report_shows_it():
    from musicrfm.experiments.pairs.run import score
    from musicrfm.experiments.pairs.tables import pairs_markdown

    cells = {UNSTEERED: [("C", 100.0)] * 4, ALONE[0]: [("A", 100.0)] * 4,
             ALONE[1]: [("C", 130.0)] * 4, JOINT: [("A", 125.0)] * 3 + [("A", 110.0)]}  # fmt: skip
    frame = _frame(cells, "A+faster").drop(columns="tempo")  # score labels it itself
    cfg = PairsConfig(**NOTE_TEMPO, pairs=(("A", "faster"),), controls=(), conflict=None)
    record = score(frame, {}, cfg)
    assert record["tempo_threshold"]["faster_at_least_bpm"] == pytest.approx(120.0)
    assert record["pairs"][0]["verdict"]["joint"] == 0.75 and record["overall"]["passed"] == 1
    md = pairs_markdown(record)
    assert "at least 1.2x ('faster') or at most 0.8x ('slower')" in md
    assert "faster >= 120.0 BPM" in md and "## Tempo: the BPM distribution" in md
    assert "median BPM steered vs unsteered" in md and "100 vs 100, +0%" in md


@pytest.fixture(scope="module")
def adapter():
    from musicrfm.models import load_model

    return load_model("random:tiny")


def test_a_note_and_tempo_pair_runs_to_the_report_on_a_random_model(tmp_path, adapter):
    """Note directions given, the tempo direction trained as the headline trains it (13 strike
    clips, one a tempo); 2 clips of 1.2 s a condition: every file, the BPMs and the bar."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.pairs import run_pairs
    from musicrfm.probes.directions import ConceptDirections

    start = time.process_time()
    g = torch.Generator().manual_seed(0)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 12, 1, d, generator=g)
    notes = ConceptDirections("notes", list(PITCH_CLASSES), v / v.norm(dim=-1, keepdim=True),
                              torch.rand(L, 12, generator=g), list(range(L)),
                              meta={"model_id": adapter.model_id, "num_layers": L,
                                    "hidden_size": d, "activation_norm": 10.0})  # fmt: skip
    data = replace(DemoConfig.quick(), prompts=("acoustic piano", "violin"), seconds=1.2,
                   clips_per_class=1)  # fmt: skip
    cfg = PairsConfig(first=PartSpec("notes", "0.5x"), second=PartSpec("tempos", "0.5x"),
                      pairs=(("A", "slower"),), clips=2, controls=("flip",), conflict=None,
                      data=data)  # fmt: skip
    out = tmp_path / "out"
    record = run_pairs(model=adapter, out=out, work=tmp_path / "work", config=cfg,
                       directions={"notes": notes}, progress=False)  # fmt: skip
    assert json.loads((out / "pairs.json").read_text()) == record
    tempo = record["settings"]["parts"]["second"]
    assert tempo["concept"] == "tempos" and tempo["activation_norm"] > 0
    (p,) = record["pairs"]
    assert [r["condition"] for r in p["rows"]] == [UNSTEERED, *ALONE, JOINT]
    assert [r["condition"] for r in p["tempo"]] == [UNSTEERED, *ALONE, JOINT, "joint-flip"]
    # 'slower': the tempo direction at -η0 (the validator's signed η0), the note's positive
    said = record["plans"]["A+slower"]["validator"]
    assert said["directions"] == ["notes:A", "tempos:slower"]
    assert said["eta0"][0] > 0 > said["eta0"][1] == pytest.approx(-tempo["eta0"])
    assert (out / "directions" / "tempos.safetensors").is_file() and (
        out / "pairs.png"
    ).stat().st_size
    t = record["tempo_threshold"]
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 5 * 2 and {"bpm", "tempo"} <= set(frame.columns)
    base = frame.loc[frame["condition"] == UNSTEERED, "bpm"]
    if base.notna().any():  # the bar is what the unsteered BPMs in results.csv give
        assert t["unsteered_median_bpm"] == pytest.approx(float(base.median()))
        assert t["slower_at_most_bpm"] == pytest.approx(0.8 * base.median())
    md = (out / "pairs.md").read_text()
    assert "## Tempo: the BPM distribution" in md and "detected BPM" in md
    assert time.process_time() - start < 30, record["timings"]


def test_cli_refuses_a_bad_tempo_target_and_a_tempo_conflict_in_one_line(tmp_path):
    base = [sys.executable, "-m", "musicrfm", "mini", "pairs", "--model", "random:tiny",
            "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")]  # fmt: skip
    for extra, says in (
        (["--second", "tempos", "--pairs", "A+fast"], "valid: faster, slower"),
        (["--first", "tempos", "--second", "notes", "--pairs", "slower+A"], "--no-conflict"),
    ):
        proc = subprocess.run([*base, *extra], capture_output=True, text=True)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
