"""The steering headline (`musicrfm mini headline`): its verdict logic on constructed results,
and the whole pipeline on a random tiny MusicGen (plumbing; a random model steers nothing)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.demo import DemoConfig
from musicrfm.experiments.headline.config import HeadlineConfig
from musicrfm.experiments.headline.tables import headline_table
from musicrfm.theory import PITCH_CLASSES

TARGETS = ("C", "G")


def _probs(label: str, avoid: str | None = None, onehot: bool = False) -> list[float]:
    """Detector probabilities: 0.8 on ``label`` (or all of it); ``avoid`` (a steered-away note)
    gets none."""
    p = np.full(12, 0.0 if onehot else 0.2 / 11)
    if avoid is not None:
        p[PITCH_CLASSES.index(avoid)] = 0.0
    p[PITCH_CLASSES.index(label)] = 0.8
    return (p / p.sum()).tolist()


def _rows(condition, target, coef, labels, match=1.0, avoid=None, onehot=False):
    return [
        {
            "condition": condition,
            "target": target,
            "coef": coef,
            "label": lab,
            "probs": _probs(lab, avoid, onehot),
            "prompt": f"p{i % 4}",
            "seed": i // 4,
            "instrument_match": match,
        }
        for i, lab in enumerate(labels)
    ]


def _frame(
    *, hit=0.9, random_hits=1, flip_label=None, match=1.0, targets=TARGETS, onehot=False
) -> pd.DataFrame:
    """Baseline: 24 clips spread over the notes (each note twice); per target 10 clips."""
    base = [PITCH_CLASSES[i % 12] for i in range(24)]
    rows = _rows("unsteered", "C", 0.0, base, onehot=onehot)
    for t in targets:
        n_hit = int(round(hit * 10))
        other = "E" if t != "E" else "F"
        rows += _rows("concept", t, 10.0, [t] * n_hit + [other] * (10 - n_hit), match)
        rows += _rows("concept", t, 5.0, [t] * 3 + [other] * 7, match)
        rows += _rows("random", t, 10.0, [t] * random_hits + [other] * (10 - random_hits))
        rows += _rows("orthogonal", t, 10.0, ["A" if t != "A" else "B"] * 10)
        flip = flip_label or ("D" if t != "D" else "C#")  # by default a note other than t
        rows += _rows("flip", t, 10.0, [flip] * 10, avoid=t if flip != t else None, onehot=onehot)
    return pd.DataFrame(rows)


CFG = HeadlineConfig(targets=TARGETS, clips=10, flip_clips=10, baseline_clips=24)


def test_verdict_passes_when_every_criterion_holds():
    table, overall = headline_table(_frame(), CFG)
    assert list(table["target"]) == list(TARGETS)
    assert (table["best_coef"] == 10.0).all() and (table["accuracy"] == 0.9).all()
    assert table["baseline"].tolist() == pytest.approx([2 / 24, 2 / 24])
    assert overall["all_reach_gate"] and overall["passed"]
    assert overall["random_consistent_with_baseline_all"]
    assert overall["flip_below_baseline_all"]
    assert overall["flip_pooled_below_baseline"]
    assert overall["adherence_change"] == pytest.approx(0.0)


def test_a_flip_at_a_low_floor_passes_when_it_is_lower_everywhere_and_pooled():
    """Every note is 2 of 24 baseline clips, and every flip clip avoids its target: no single
    note's CI can exclude zero (a resampled baseline has no hits 12% of the time), but all
    twelve together show the flip below baseline. The per-note count still reports 0/12."""
    frame = _frame(targets=PITCH_CLASSES, onehot=True)
    cfg = replace(CFG, targets=PITCH_CLASSES)
    table, overall = headline_table(frame, cfg)
    assert (table["flip"] == 0).all() and table["flip_lower_than_baseline"].all()
    assert overall["flip_below_baseline_count"] == 0
    assert overall["flip_prob_pooled_minus_baseline"] == pytest.approx(-1 / 12)
    assert overall["flip_prob_pooled_ci"][1] < 0
    assert overall["passed"]
    # the same with a flip that plays its own target in 3 of 10 clips for one note: fails
    flip_c = (frame["condition"] == "flip") & (frame["target"] == "C")
    frame.loc[frame.index[flip_c][:3], "probs"] = pd.Series([_probs("C", onehot=True)] * 3).values
    _, overall = headline_table(frame, cfg)
    assert not overall["flip_lower_than_baseline_all"] and not overall["passed"]


def test_smallest_passing_coef_is_chosen():
    frame = _frame()
    frame.loc[(frame["condition"] == "concept") & (frame["coef"] == 5.0), "label"] = "C"
    frame.loc[(frame["condition"] == "concept") & (frame["coef"] == 5.0), "target"] = "C"
    table, _ = headline_table(frame, CFG)
    assert table.set_index("target").loc["C", "best_coef"] == 5.0


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"hit": 0.7}, "all_reach_gate"),
        ({"random_hits": 8}, "random_consistent_with_baseline_all"),
        ({"flip_label": "C"}, "flip_lower_than_baseline_all"),  # C's flip lands on C
        ({"match": 0.5}, "adherence_within_tolerance"),
    ],
)
def test_each_failed_criterion_fails_the_verdict(changes, failed):
    frame = _frame(**changes)
    _, overall = headline_table(frame, CFG)
    assert overall[failed] is False
    assert overall["passed"] is False


def test_the_full_headline_uses_the_reference_judge_and_a_fine_grid():
    """Adherence is judged by the reference instrument classifier (0.995 on codec round trips)
    unless asked otherwise; the quick pipeline check keeps the fast note-set one. The η0 grid is
    finest where adherence falls (0.1-0.2x norm)."""
    assert HeadlineConfig().instrument_reference is True
    assert HeadlineConfig.quick().instrument_reference is False
    assert HeadlineConfig().relative_coefs == (0.03, 0.05, 0.07, 0.1, 0.15)


def test_bad_configs_are_rejected():
    with pytest.raises(ConfigError, match="control"):
        HeadlineConfig(controls=("sideways",)).validate()
    with pytest.raises(ConfigError, match="baseline_clips"):
        HeadlineConfig(clips=10, baseline_clips=4).validate()
    # the flip's clips reuse the baseline's prompts and seeds, so it cannot have more
    with pytest.raises(ConfigError, match="flip_clips 96, baseline_clips 48"):
        HeadlineConfig(clips=10, baseline_clips=48).validate()
    with pytest.raises(ConfigError, match="flip_clips >= 2"):
        HeadlineConfig(flip_clips=1).validate()
    with pytest.raises(ConfigError, match="unsteered"):
        headline_table(_frame().query("condition != 'unsteered'"), CFG)


def test_tradeoff_pools_targets_per_coef_with_the_baseline_first():
    from musicrfm.experiments.headline.tables import tradeoff_table

    trade = tradeoff_table(_frame(hit=0.9, match=0.5))
    assert trade["condition"].tolist() == ["unsteered", "direction", "direction"]
    assert trade["coef"].tolist() == [0.0, 5.0, 10.0]
    # the baseline's "target" column is C: 2 of its 24 spread-out clips are C
    assert trade["hit_rate"].tolist() == pytest.approx([2 / 24, 0.3, 0.9])
    assert trade["n"].tolist() == [24, 20, 20]
    assert trade["adherence"].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert (trade["hit_ci_low"] <= trade["hit_rate"]).all()
    assert (trade["hit_rate"] <= trade["hit_ci_high"]).all()


@pytest.mark.parametrize(
    "concept, word",
    [("notes", "note"), ("chords", "chord quality"), ("intervals", "interval"),
     ("tempo_bins", "tempo bin"), ("time_signatures", "time signature")],
)  # fmt: skip
def test_the_tradeoff_figure_names_the_concepts_class_on_its_y_axis(
    tmp_path, monkeypatch, concept, word
):
    """The y-axis says what a hit is for the concept steered, not "target note" for all."""
    import matplotlib.pyplot as plt

    from musicrfm.experiments.headline.figures import plot_tradeoff
    from musicrfm.experiments.headline.tables import tradeoff_table

    labels: list[str] = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (labels.append(fig.axes[0].get_ylabel()),
                                                        close(fig)))  # fmt: skip
    trade = tradeoff_table(_frame(hit=0.9, match=0.5))
    path = plot_tradeoff(trade, tmp_path / "t.png", 0.8, 0.02, concept)
    assert path is not None and path.stat().st_size > 0
    assert labels == [f"clips detected as the target {word}"]


def test_every_plan_gets_the_configured_layers_rows_and_gate():
    from musicrfm.experiments.headline.config import control_jobs, direction_jobs
    from musicrfm.probes.directions import ConceptDirections

    cd = ConceptDirections(
        concept="notes", classes=list(PITCH_CLASSES), vectors=torch.randn(3, 12, 1, 8),
        scores=torch.ones(3, 12), layers=[0, 1, 2],
    )  # fmt: skip
    cfg = HeadlineConfig(
        targets=TARGETS, clips=4, flip_clips=6, baseline_clips=8, layers="1,2", rows="contrast",
        gate=0.3,
    )  # fmt: skip
    cfg.validate()
    controls = control_jobs(cd, cfg, {"C": 1.0, "G": 2.0}, 0)
    jobs = direction_jobs(cd, cfg, (1.0, 2.0), 0) + controls
    # the flip gets its own (larger) number of clips, on the baseline's first prompts and seeds
    baseline = jobs[0].items
    assert all(j.items == baseline[: 6 if j.condition == "flip" else 4] for j in controls)
    plans = [j.plan for j in jobs if j.plan is not None]
    assert len(plans) == 2 * 2 + 2 * 3
    assert all(
        d.layers == [1, 2] and d.rows == "contrast" and d.gate == 0.3
        for p in plans
        for d in p.directions
    )
    with pytest.raises(ConfigError, match="rows"):
        HeadlineConfig(rows="sideways").validate()
    with pytest.raises(ConfigError, match="gate"):
        HeadlineConfig(gate=1.5).validate()


def test_pipeline_runs_end_to_end_on_a_random_model(tmp_path):
    from musicrfm.experiments.headline.run import run_headline

    data = replace(
        DemoConfig.quick(), clips_per_class=6, prompts=("acoustic piano", "violin"), seconds=0.5,
        instrument_check=False,
    )  # fmt: skip
    cfg = HeadlineConfig.quick(clips=2, baseline_clips=4, relative_coefs=(0.5, 1.0), data=data)
    record = run_headline(
        model="random:tiny", out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        progress=False,
    )  # fmt: skip
    saved = json.loads((tmp_path / "out" / "headline.json").read_text())
    assert saved == record
    assert [r["target"] for r in record["per_target"]] == ["C", "G"]
    assert record["overall"]["targets"] == 2
    assert (tmp_path / "out" / "headline.png").stat().st_size > 0
    assert [r["condition"] for r in record["tradeoff"]] == ["unsteered", "direction", "direction"]
    clips = pd.read_csv(tmp_path / "out" / "results.csv")
    # baseline 4 + per target (2 η0 + 3 controls) x 2 clips
    assert len(clips) == 4 + 2 * 5 * 2
    assert (tmp_path / "out" / clips["audio_path"].iloc[0]).exists()
    # controls ran at the η0 chosen for each target's direction (equal norm)
    best = {r["target"]: r["best_coef"] for r in record["per_target"]}
    ctl = clips[~clips["condition"].isin(["unsteered", "concept"])]
    assert set(ctl["condition"]) == {"random", "orthogonal", "flip"}
    assert all(row.coef == pytest.approx(best[row.target]) for row in ctl.itertuples())


def test_cli_rejects_an_unknown_note_in_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "musicrfm", "mini", "headline", "--model", "random:tiny",
         "--targets", "H", "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "H" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_codec_round_trip_resamples_to_the_model_rate():
    from musicrfm.evaluation.judges import codec_round_trip
    from musicrfm.models import load_model

    adapter = load_model("random:tiny")
    sr = int(adapter.sample_rate)
    clips = [(np.sin(np.linspace(0, 400, 22050)).astype(np.float32), 22050),
             (np.zeros(sr // 2, np.float32), sr)]  # fmt: skip
    out = codec_round_trip(adapter)(clips)
    assert [s for _, s in out] == [sr, sr]
    hop = sr / adapter.frame_rate
    assert abs(len(out[0][0]) - sr) <= hop and abs(len(out[1][0]) - sr // 2) <= hop
    assert all(np.isfinite(a).all() for a, _ in out)


def test_a_control_with_no_hits_is_consistent_with_a_low_baseline():
    """0/24 is what a 5% rate gives about a third of the time; the bootstrap's interval for the
    difference collapses there and would call the control different from the baseline."""
    from musicrfm.evaluation.metrics import bootstrap_difference, proportion_difference

    control, base = np.zeros(24), np.r_[np.ones(5), np.zeros(91)]
    assert bootstrap_difference(control, base, seed=0).high < 0  # the degenerate reading
    d = proportion_difference(control, base)
    assert d.low < 0 < d.high and d.value == pytest.approx(-5 / 96)
    clear = proportion_difference(np.r_[np.ones(20), np.zeros(4)], base)
    assert clear.low > 0.5  # a real effect is still found
    frame = _frame()
    for t in TARGETS:
        rows = (frame["condition"] == "random") & (frame["target"] == t)
        frame.loc[rows, "label"] = "A"  # the random control never lands on the target
    _, overall = headline_table(frame, CFG)
    assert overall["random_consistent_with_baseline_all"]
    with pytest.raises(ConfigError, match="0/1"):
        proportion_difference([0.5], [1.0])


def test_the_model_card_shows_the_flip_with_its_n_ci_and_pooled_verdict(tmp_path):
    from musicrfm.experiments.headline.tables import verdict_lines
    from musicrfm.mini.card import record_headline

    table, overall = headline_table(_frame(), CFG)
    record = {
        "overall": overall,
        "per_target": table.to_dict(orient="records"),
        "settings": {"command": "musicrfm mini headline", "coefs": [5.0, 10.0],
                     "relative_coefs": [0.05, 0.1]},
    }  # fmt: skip
    card = record_headline(tmp_path, json.loads(json.dumps(record))).read_text()
    row = next(line for line in card.splitlines() if line.startswith("| C |"))
    d = table.set_index("target").loc["C"]
    assert "0.00 (n=10)" in row
    assert f"{d['flip_prob_minus_baseline']:+.3f} [{d['flip_prob_ci_low']:+.3f}," in row
    lines = verdict_lines(overall)
    assert any(line.startswith("- Sign-flipped direction") and "True" in line for line in lines)
    assert all(line in card for line in lines)


QUALITIES = ("major", "minor", "augmented", "diminished")
SIZES = ("4", "3", "8", "6")  # an interval detector's labels (semitones): no class probabilities


def _class_frame(classes, targets, *, hit: float, flip_to_target: bool = False, probs: bool = True):
    """A headline's clips for a concept with four classes: the baseline spread over them; per
    target 10 steered clips (``hit`` of them right), controls that mostly miss, and a flip that
    avoids the target (or lands on it)."""

    def rows(condition, target, coef, labels):
        out = []
        for i, lab in enumerate(labels):
            p = np.full(4, 0.1)
            p[classes.index(lab)] = 0.7
            if condition == "flip" and not flip_to_target:
                p[classes.index(classes[targets.index(target)])] = 0.0
            out.append({
                "condition": condition, "target": target, "coef": coef, "label": lab,
                "probs": (p / p.sum()).tolist() if probs else [float("nan")] * 4,
                "prompt": f"p{i % 4}", "seed": i // 4, "instrument_match": 1.0,
            })  # fmt: skip
        return out

    data = rows("unsteered", targets[0], 0.0, [classes[i % 4] for i in range(24)])
    for t, right in zip(targets, classes):
        n = int(round(hit * 10))
        data += rows("concept", t, 10.0, [right] * n + [classes[2]] * (10 - n))
        data += rows("random", t, 10.0, [right] * 2 + [classes[2]] * 8)
        data += rows("orthogonal", t, 10.0, [right] * 2 + [classes[2]] * 8)
        data += rows("flip", t, 10.0, [right] * 10 if flip_to_target else [classes[3]] * 10)
    return pd.DataFrame(data)


@pytest.mark.parametrize(
    ("concept", "classes", "targets"),
    [("chords", QUALITIES, ("major", "Cm")), ("intervals", SIZES, ("M3", "minor third"))],
)
def test_another_concepts_headline_verdict_can_pass_and_fail(concept, classes, targets):
    """The same verdict for chord qualities (class probabilities) and intervals (hit rates
    only), with targets matched by the concept's detector rule ("Cm" is minor, "minor third"
    is 3 semitones)."""
    from musicrfm.experiments.headline.tables import verdict_lines

    cfg = HeadlineConfig(
        concept=concept, targets=targets, clips=10, flip_clips=10, baseline_clips=24
    )
    probs = concept == "chords"

    def verdict(**kw):
        return headline_table(_class_frame(classes, targets, probs=probs, **kw), cfg)[1]

    ok = verdict(hit=0.9)
    assert ok["passed"] and ok["concept"] == concept
    assert ("flip_pooled_below_baseline" in ok) is probs
    assert ("flip_hits_at_most_baseline_all" in ok) is not probs
    assert not verdict(hit=0.5)["passed"]
    assert not verdict(hit=0.9, flip_to_target=True)["passed"]
    assert any(f"{concept} classes" in line for line in verdict_lines(ok))


@pytest.mark.parametrize(
    "concept", ["chords", "intervals", "scales", "progressions", "time_signatures"]
)
def test_a_quick_headline_runs_for_other_concepts_on_a_random_model(tmp_path, monkeypatch, concept):
    """Every classification concept with a synthetic set and a detector runs the headline; its
    tradeoff figure is drawn for that concept."""
    from musicrfm.experiments.headline import run as headline_run
    from musicrfm.experiments.headline.run import run_headline
    from musicrfm.synth.concepts import get_concept

    drawn: list[str] = []
    plot = headline_run.plot_tradeoff
    monkeypatch.setattr(headline_run, "plot_tradeoff",
                        lambda *a, **k: drawn.append(a[4] if len(a) > 4 else k["concept"])
                        or plot(*a, **k))  # fmt: skip

    data = replace(
        DemoConfig.quick(), clips_per_class=6, prompts=("acoustic piano", "violin"), seconds=0.5,
        instrument_check=False,
    )  # fmt: skip
    cfg = HeadlineConfig.quick(
        concept=concept, clips=2, baseline_clips=4, relative_coefs=(0.5,), data=data
    )
    record = run_headline(
        model="random:tiny", out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        progress=False,
    )  # fmt: skip
    targets = [r["target"] for r in record["per_target"]]
    expected = len(get_concept(concept).labels)
    assert expected == {"chords": 4, "intervals": 12}.get(concept, expected)
    assert len(targets) == expected and record["overall"]["concept"] == concept
    assert (tmp_path / "out" / "directions" / f"{concept}.safetensors").exists()
    md = (tmp_path / "out" / "headline.md").read_text()
    assert f"every {concept} class" in md
    assert drawn == [concept]


def test_tempo_bins_headline_runs_on_a_random_model(tmp_path):
    """Tempo's classification form: strike clips labelled slow / medium / fast by their BPM,
    one direction per bin, steered clips judged by the BPM detector's bin."""
    from musicrfm.experiments.headline.run import run_headline

    data = replace(
        DemoConfig.quick(), clips_per_class=8, prompts=("acoustic piano",), seconds=0.5,
        instrument_check=False,
    )  # fmt: skip
    cfg = HeadlineConfig.quick(
        concept="tempo_bins", targets=("slow", "fast"), clips=2, baseline_clips=4,
        relative_coefs=(0.5,), data=data,
    )  # fmt: skip
    record = run_headline(
        model="random:tiny", out=tmp_path / "out", work=tmp_path / "work", config=cfg,
        progress=False,
    )  # fmt: skip
    assert [r["target"] for r in record["per_target"]] == ["slow", "fast"]
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    # 'none': a clip without a pulse (0.5 s of a random model) has no tempo bin
    assert set(results["label"].astype(str)) <= {"slow", "medium", "fast", "silent", "none"}
    assert "bpm" in results  # the reading each bin came from


def test_strike_tempos_fall_into_their_bins():
    from musicrfm.evaluation.detectors.tempo import TEMPO_BIN_LABELS, tempo_bin
    from musicrfm.synth.strikes import TEMPOS

    bins = [tempo_bin(b) for b in TEMPOS]
    assert bins == ["slow"] * 4 + ["medium"] * 4 + ["fast"] * 5
    assert TEMPO_BIN_LABELS == ("slow", "medium", "fast")
    with pytest.raises(ValueError):
        tempo_bin(float("nan"))
