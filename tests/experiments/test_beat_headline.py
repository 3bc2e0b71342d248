"""The beat headline: onset directions pulsed on the beats of target tempos."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest


def _frame(hit: float, control: float, flip: float, base: float = 0.05, adherence: float = 1.0):
    """Clips at 80 BPM whose detected tempo is on target in the given shares."""
    rows = []

    def add(cond: str, coef: float, share: float, match: float = 1.0, n: int = 24) -> None:
        for i in range(n):
            bpm = 80.5 if i < round(share * n) else 111.0
            rows.append({"condition": cond, "coef": coef, "target": "none" if cond == "unsteered"
                         else "80", "bpm": bpm, "instrument_match": float(i < match * n)})  # fmt: skip

    add("unsteered", 0.0, base)
    add("onset", 1.0, hit * 0.5, adherence)
    add("onset", 2.0, hit, adherence)
    add("random", 2.0, control)
    add("orthogonal", 2.0, control)
    add("flip", 2.0, flip)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("kw", "passed"),
    [
        ({"hit": 0.9, "control": 0.05, "flip": 0.0}, True),
        ({"hit": 0.6, "control": 0.05, "flip": 0.0}, False),  # below the gate
        ({"hit": 0.9, "control": 0.6, "flip": 0.0}, False),  # a random pulse keeps time too
        ({"hit": 0.9, "control": 0.05, "flip": 0.6}, False),  # the flip plays the beat
        ({"hit": 0.9, "control": 0.05, "flip": 0.0, "adherence": 0.9}, False),
    ],
)
def test_beat_verdict_can_pass_and_fail(kw: dict, passed: bool) -> None:
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.experiments.headline.beat import beat_table, beat_verdict, best_beat_coefs

    cfg = HeadlineConfig(concept="beats")
    frame = _frame(**kw)
    table = beat_table(frame, (80.0,))
    best = best_beat_coefs(table, cfg.accuracy_gate)
    assert best == {80.0: 2.0}
    verdict = beat_verdict(frame, best, cfg)
    assert verdict["passed"] is passed
    assert verdict["tempos"]["80"]["unsteered_hit_rate"] == pytest.approx(1 / 24)


def test_within_tolerance_and_silence() -> None:
    from musicrfm.experiments.headline.beat import within

    assert within([80, 83.1, 76.9, np.nan, 160], 80).tolist() == [1, 1, 1, 0, 0]


def test_a_quick_beat_headline_runs_on_a_random_model(tmp_path) -> None:
    """Plumbing: strike clips -> per-frame features -> onset labels -> onset probe -> pulses at
    each tempo -> controls -> detected BPM -> table, verdict, report (a random model keeps no
    time), and the onset directions it writes compile with generate --bpm."""
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.experiments.headline.beat import run_beat_headline
    from musicrfm.steering.plan import compile_progression
    from musicrfm.steering.progressions import make_progression

    cfg = HeadlineConfig.quick(concept="beats", relative_coefs=(0.5,))
    cfg = replace(cfg, data=replace(cfg.data, clips_per_class=3, seconds=2.0))
    record = run_beat_headline(
        model="random:tiny", out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        bpms=(90.0, 150.0), progress=False,
    )  # fmt: skip
    conds = {(r["bpm"], r["condition"]) for r in record["rows"]}
    for bpm in (90.0, 150.0):
        assert {(bpm, c) for c in ("unsteered", "onset", "random", "flip")} <= conds
    assert set(record["overall"]["tempos"]) == {"90", "150"}
    assert isinstance(record["overall"]["passed"], bool)
    out = tmp_path / "out"
    assert json.loads((out / "headline.json").read_text())["rows"] == record["rows"]
    assert (out / "beats.png").stat().st_size > 0
    assert len(record["probe_auc"]["test"]) == 4  # one onset probe per layer of the tiny model
    plan = compile_progression(
        make_progression(bpm=100, steer_beat=True, seconds=2.0), [out / "directions" / "onsets"],
        "0.1x",
    )  # fmt: skip
    assert plan.directions[0].target == "onset"


def test_a_mini_models_card_keeps_the_beat_headline(tmp_path) -> None:
    from dataclasses import asdict

    from musicrfm.mini.card import record_headline
    from musicrfm.mini.config import TrainConfig

    frame = _frame(hit=0.9, control=0.05, flip=0.0)
    from musicrfm.experiments.headline import HeadlineConfig
    from musicrfm.experiments.headline.beat import beat_table, beat_verdict

    cfg = HeadlineConfig(concept="beats")
    record = {"overall": beat_verdict(frame, {80.0: 2.0}, cfg),
              "rows": beat_table(frame, (80.0,)).to_dict(orient="records"),
              "settings": {"command": "musicrfm mini headline --concept beats"}}  # fmt: skip
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps({"train_config": asdict(TrainConfig())}))
    card = record_headline(folder, record, "beats").read_text()
    assert json.loads((folder / "headline-beats.json").read_text()) == record
    assert "## Steering the beat (onset directions pulsed on a tempo grid)" in card
    assert "| 80 | onset | 2.00 | 0.92" in card and "All criteria met: True" in card
