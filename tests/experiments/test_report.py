"""Report helpers on synthetic results frames: tables, control comparisons, figures, HTML."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicrfm.errors import ConfigError
from musicrfm.evaluation import detectors as det
from musicrfm.experiments import report as rep

COEFS = (0.0, 0.3, 0.6)


def _results(effect: float, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A fake sweep: the concept direction hits its target with probability rising with eta0
    (slope ``effect``); controls stay at chance (1/12)."""
    rng = np.random.default_rng(seed)
    rows = []
    for condition in ("concept", "random", "sign_flip"):
        for coef in COEFS:
            p = 1 / 12 + (effect * coef if condition == "concept" else 0.0)
            for s in range(n):
                hit = rng.random() < p
                rows.append(
                    {
                        "condition": condition,
                        "concept": "notes",
                        "target": "D",
                        "coef": coef,
                        "seed": s,
                        "label": "D" if hit else "F#",
                        "confidence": 0.5,
                    }
                )
    return pd.DataFrame(rows)


def test_with_correct_uses_the_detectors_rules() -> None:
    frame = pd.DataFrame(
        {
            "condition": ["concept"] * 3,
            "concept": ["notes", "tempos", "chords"],
            "target": ["Db", "120", "minor"],
            "coef": [0.5] * 3,
            "label": ["C#", "60", det.SILENT],
        }
    )
    assert rep.with_correct(frame)["correct"].tolist() == [True, True, False]
    with pytest.raises(ConfigError, match="lacks column"):
        rep.with_correct(frame.drop(columns=["target"]))
    with pytest.raises(ConfigError, match="empty"):
        rep.with_correct(frame.iloc[0:0])


def test_accuracy_table_has_ci_and_n() -> None:
    table = rep.accuracy_table(_results(1.2))
    assert len(table) == 3 * len(COEFS)
    assert (table["n"] == 40).all()
    assert ((table["ci_low"] <= table["accuracy"]) & (table["accuracy"] <= table["ci_high"])).all()
    strong = table[(table.condition == "concept") & (table.coef == 0.6)].iloc[0]
    assert strong.accuracy > 0.6
    assert "mean_confidence" in table.columns


def test_controls_comparison_detects_a_real_effect() -> None:
    comparison = rep.compare_conditions(_results(1.2))
    strong = comparison[comparison.coef == 0.6]
    assert set(strong.control) == {"random", "sign_flip"}
    assert strong["specific"].all()
    assert not comparison[comparison.coef == 0.0]["specific"].any()
    assert "is specific" in rep.specificity_statement(comparison)


def test_controls_comparison_can_fail() -> None:
    # no effect at all: the concept direction is indistinguishable from its controls
    comparison = rep.compare_conditions(_results(0.0, seed=1))
    assert not comparison["specific"].any()
    assert "NOT shown to be specific" in rep.specificity_statement(comparison)
    with pytest.raises(ConfigError, match="no rows with condition"):
        rep.compare_conditions(_results(0.0), reference="steered")


def test_markdown_and_csv_tables(tmp_path) -> None:
    table = rep.accuracy_table(_results(1.0))
    csv_path, md_path = rep.write_table(table, tmp_path, "acc", title="Accuracy")
    back = pd.read_csv(csv_path)
    assert len(back) == len(table)
    md = md_path.read_text().splitlines()
    assert md[0] == "# Accuracy"
    assert md[2].startswith("| concept | condition | coef | accuracy")
    assert len(md) == 4 + len(table)
    assert rep.to_markdown(pd.DataFrame({"a": [1.23456, np.nan], "b": ["x|y", None]})).splitlines()[
        2:
    ] == [
        "| 1.235 | x\\|y |",
        "|  |  |",
    ]


def test_accuracy_figure(tmp_path) -> None:
    table = rep.accuracy_table(_results(1.0))
    path = rep.plot_accuracy_vs_coef(table, tmp_path / "fig.png", chance={"notes": 1 / 12})
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="lacks column"):
        rep.plot_accuracy_vs_coef(table.drop(columns=["ci_low"]), tmp_path / "bad.png")


def test_trace_and_panel_figures(tmp_path) -> None:
    y = np.concatenate([det.harmonic_tone(60, 1.0), det.harmonic_tone(62, 1.0)])
    d = det.detect_note(y, det.SAMPLE_RATE)
    times = np.linspace(0, 2, 20)
    p1 = rep.plot_trace(d, tmp_path / "trace.png", target="D", schedule=(times, times / 2))
    p2 = rep.plot_trace(
        det.detect_tempo(det.click_track(100, 4.0), det.SAMPLE_RATE), tmp_path / "tempo.png"
    )
    p3 = rep.plot_trace(det.detect_note(np.zeros(1000), det.SAMPLE_RATE), tmp_path / "silent.png")
    p4 = rep.plot_audio_panels(y, det.SAMPLE_RATE, tmp_path / "panels.png", title="C then D")
    for p in (p1, p2, p3, p4):
        assert p.stat().st_size > 1000


def test_build_report_with_audio_players(tmp_path) -> None:
    results = _results(1.0, n=6)
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    paths = []
    for i, row in results.iterrows():
        if row.seed == 0:
            path = audio_dir / f"clip{i}.wav"
            sf.write(path, det.harmonic_tone(62 if row.label == "D" else 66, 1.0, 16000), 16000)
            paths.append(str(path))
        else:
            paths.append(None)
    results["audio_path"] = paths
    out = tmp_path / "report"
    index = rep.build_report(results, out, title="Fake sweep", n_boot=200)
    page = index.read_text()
    assert page.count("<audio controls") == len(results.condition.unique()) * len(COEFS)
    assert "../audio/clip" in page  # players link relative to the page
    assert "figures/accuracy_vs_coef.png" in page
    assert "Causal controls" in page and "specific" in page
    for name in ("results.csv", "accuracy.csv", "accuracy.md", "controls.csv", "controls.md"):
        assert (out / name).is_file()
    assert len(list((out / "figures").glob("example_*_panels.png"))) == 9
    assert pd.read_csv(out / "results.csv")["correct"].dtype == bool
