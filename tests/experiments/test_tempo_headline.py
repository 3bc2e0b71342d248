"""The tempo headline: a signed regression direction judged by the detected BPM."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest


def _frame(faster: float, slower: float, control: float, flip: float, adherence: float = 1.0):
    """Clips whose BPM is 120 x (1 + change) per condition, with a little spread."""
    rng = np.random.default_rng(0)
    rows = []

    def add(cond: str, coef: float, change: float, n: int = 24, match: float = 1.0) -> None:
        for i in range(n):
            rows.append({"condition": cond, "coef": coef, "instrument_match": float(i < match * n),
                         "bpm": 120 * (1 + change) + rng.normal(0, 2)})  # fmt: skip

    add("unsteered", 0.0, 0.0, 48)
    for c, scale in ((0.5, 0.5), (1.0, 1.0)):
        add("faster", c, faster * scale, match=adherence)
        add("slower", -c, slower * scale, match=adherence)
    for kind in ("random", "orthogonal"):
        add(f"{kind} (faster)", 1.0, control)
        add(f"{kind} (slower)", -1.0, control)
    add("flip (faster)", 1.0, flip)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("changes", "passed"),
    [
        ({"faster": 0.3, "slower": -0.3, "control": 0.0, "flip": -0.3}, True),
        ({"faster": 0.1, "slower": -0.3, "control": 0.0, "flip": -0.3}, False),  # too little
        ({"faster": 0.3, "slower": 0.3, "control": 0.0, "flip": -0.3}, False),  # not monotone
        ({"faster": 0.3, "slower": -0.3, "control": 0.15, "flip": -0.3}, False),  # control moves
        ({"faster": 0.3, "slower": -0.3, "control": 0.0, "flip": 0.2}, False),  # flip speeds up
        ({"faster": 0.3, "slower": -0.3, "control": 0.0, "flip": -0.3, "adherence": 0.9}, False),
    ],
)
def test_tempo_verdict_can_pass_and_fail(changes: dict, passed: bool) -> None:
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.experiments.headline.tempo import (
        TEMPO_CHANGE_GATE,
        best_coefs,
        tempo_table,
        tempo_verdict,
    )

    table = tempo_table(_frame(**changes), seed=0)
    best = best_coefs(table, TEMPO_CHANGE_GATE)
    verdict = tempo_verdict(table, best, HeadlineConfig(concept="tempos"))
    assert verdict["passed"] is passed
    if passed:
        assert best == {"faster": 1.0, "slower": -1.0}  # 0.5 moves it only 15%
        assert verdict["monotone"] and verdict["flip"]["slows_down"]


def test_held_notes_are_dropped_from_the_bpm_and_counted() -> None:
    """A held note's tracked BPM (~117) would score as a hit at 120: it is NaN, and the table
    shows the share dropped; a cell of held notes only has no median and is never 'best'."""
    from musicrfm.evaluation import detectors as det
    from musicrfm.experiments.headline.tempo import best_coefs, detect_bpm, tempo_table

    sr = det.SAMPLE_RATE
    t = np.arange(4 * sr) / sr
    held = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-t / 2.0)).astype(np.float32)
    clicks = det.click_track(120, 4.0)
    records = [{"condition": c, "coef": k, "_audio": a, "_sr": sr}
               for c, k, a in (("unsteered", 0.0, clicks), ("unsteered", 0.0, clicks),
                               ("faster", 0.1, held), ("faster", 0.1, held),
                               ("faster", 0.2, clicks), ("slower", -0.1, clicks))]  # fmt: skip
    frame = detect_bpm(records)
    assert frame["no_pulse"].tolist() == [False, False, True, True, False, False]
    assert frame["bpm"].isna().tolist() == [False, False, True, True, False, False]
    table = tempo_table(frame, seed=0).set_index(["condition", "coef"])
    assert table.loc[("faster", 0.1), "no_pulse"] == 1.0
    assert table.loc[("faster", 0.1), "n"] == 0 and np.isnan(table.loc[("faster", 0.1), "change"])
    assert table.loc[("unsteered", 0.0), "no_pulse"] == 0.0
    assert best_coefs(table.reset_index(), 0.2)["faster"] == 0.2


def test_a_quick_tempo_headline_runs_on_a_random_model(tmp_path) -> None:
    """Plumbing: strike-clip tempo set -> regression direction -> faster / slower / controls ->
    detected BPM -> table, verdict, report files (a random model steers nothing)."""
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.experiments.headline.tempo import run_tempo_headline

    cfg = HeadlineConfig.quick(concept="tempos")
    cfg = replace(cfg, data=replace(cfg.data, clips_per_class=3))
    record = run_tempo_headline(
        model="random:tiny", out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        progress=False,
    )  # fmt: skip
    conditions = {r["condition"] for r in record["rows"]}
    assert conditions == {"unsteered", "faster", "slower", "random (faster)", "random (slower)",
                          "orthogonal (faster)", "orthogonal (slower)", "flip (faster)"}  # fmt: skip
    assert isinstance(record["overall"]["passed"], bool)
    assert json.loads((tmp_path / "out" / "headline.json").read_text())["rows"] == record["rows"]
    assert (tmp_path / "out" / "tempo.png").stat().st_size > 0
    assert len(record["probe_r2"]["val"]) == 4  # one regression probe per layer
    # a mini model's card keeps it beside the notes headline, in its own file
    from dataclasses import asdict

    from musicrfm.mini.card import record_headline
    from musicrfm.mini.config import TrainConfig

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps({"train_config": asdict(TrainConfig())}))
    card = record_headline(folder, record, "tempos").read_text()
    assert json.loads((folder / "headline-tempos.json").read_text()) == record
    assert not (folder / "headline.json").exists()
    assert "## Steering tempo (a signed regression direction)" in card
    assert f"All criteria met: {record['overall']['passed']}" in card
