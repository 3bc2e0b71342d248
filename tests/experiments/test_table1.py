"""`musicrfm table1`: the table's layout on constructed scores, bad input, and the whole run on a
random tiny MusicGen (plumbing: a random model's probes score near chance)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from musicrfm.cli import main
from musicrfm.errors import ConfigError
from musicrfm.experiments.table1 import (
    ROWS,
    Table1Config,
    accuracy_intervals,
    build_table1,
    chosen_layers,
    parse_concept_list,
    table_markdown,
)

METHODS = ("rfm", "ridge", "logistic", "mean_difference", "mlp")


def _scores(concepts=("tempos", "notes", "chords"), poolings=("mean", "last")) -> pd.DataFrame:
    """Three layers per (pooling, concept, method); the validation score peaks at a layer that
    differs per method, where the test score is a recognisable number (that layer's test is
    0.5 + 0.01 * method index + 0.1 * concept index + 0.2 for last-token pooling); the other
    layers have a higher test score, so a table that picked by test would be wrong."""
    recs = []
    for pooling in poolings:
        for ci, concept in enumerate(concepts):
            metric = "r2" if concept == "tempos" else "accuracy"
            for mi, method in enumerate(METHODS):
                if pooling == "last" and method != "rfm":
                    continue
                if method == "logistic" and concept == "tempos":
                    continue  # no regression form, as compare_probes
                best = (mi + ci) % 3
                for layer in range(3):
                    good = layer == best
                    test = 0.5 + 0.01 * mi + 0.1 * ci + (0.2 if pooling == "last" else 0.0)
                    recs.append(
                        {
                            "pooling": pooling,
                            "concept": concept,
                            "layer": layer,
                            "method": method,
                            "metric": metric,
                            "val": 0.9 if good else 0.3,
                            "test": test if good else 0.99,
                        }
                    )
    return pd.DataFrame(recs)


def _expected(concept_index: int, method_index: int, last: bool = False) -> float:
    return 0.5 + 0.01 * method_index + 0.1 * concept_index + (0.2 if last else 0.0)


def test_table_layout_paper_rows_columns_and_validation_chosen_cells():
    scores = _scores()
    table = build_table1(scores)
    labels = dict(ROWS)
    assert list(table.index) == [label for _key, label in ROWS]
    assert list(table.columns) == ["notes", "chords", "tempos", "Avg."]  # the paper's order
    # concept index in _scores: tempos 0, notes 1, chords 2
    assert table.loc[labels["rfm_mean"], "notes"] == pytest.approx(_expected(1, 0))
    assert table.loc[labels["rfm_last"], "notes"] == pytest.approx(_expected(1, 0, last=True))
    assert table.loc[labels["rfm_last"], "tempos"] == pytest.approx(_expected(0, 0, last=True))
    assert table.loc[labels["mlp"], "chords"] == pytest.approx(_expected(2, 4))
    assert table.loc[labels["ridge"], "tempos"] == pytest.approx(_expected(0, 1))
    # the logistic probe has no tempo cell; its Avg. is over the two concepts it has
    assert np.isnan(table.loc[labels["logistic"], "tempos"])
    assert table.loc[labels["logistic"], "Avg."] == pytest.approx(
        (_expected(1, 2) + _expected(2, 2)) / 2
    )
    assert table.loc[labels["rfm_mean"], "Avg."] == pytest.approx(
        np.mean([_expected(c, 0) for c in range(3)])
    )
    layers = chosen_layers(scores)
    assert layers[labels["rfm_last"]]["chords"] == (0 + 2) % 3
    assert layers[labels["mean_difference"]]["notes"] == (3 + 1) % 3


def test_accuracy_cells_get_wilson_intervals_and_r2_cells_none():
    table = build_table1(_scores())
    ci = accuracy_intervals(table, {"notes": 12, "chords": 100, "tempos": 30})
    low, high = ci[dict(ROWS)["rfm_mean"]]["notes"]  # 0.6 of 12 -> 7/12
    assert low < 7 / 12 < high and high - low > 0.4
    low, high = ci[dict(ROWS)["rfm_mean"]]["chords"]  # 0.7 of 100
    assert low < 0.7 < high and high - low < 0.2
    assert all("tempos" not in cells and "Avg." not in cells for cells in ci.values())


def test_table_without_last_token_scores_has_no_such_row():
    table = build_table1(_scores(concepts=("chords",), poolings=("mean",)))
    assert dict(ROWS)["rfm_last"] not in table.index
    assert list(table.columns) == ["chords", "Avg."]


def test_markdown_puts_the_paper_numbers_beside_ours():
    scores = _scores()
    table = build_table1(scores)
    info = {
        "task": "classification",
        "n": {"train": 6, "val": 1, "test": 1},
        "classes": 12,
        "clips_rendered": 96,
        "seconds": {"synthesise": 1.0},
    }
    summary = {
        "model": "toy",
        "settings": {
            "concepts": ["notes", "chords", "tempos"],
            "clips_per_class": 8,
            "tempo_step": 1,
            "seconds": 4.0,
            "programs": None,
            "seed": 0,
            "budget": "fast",
        },
        "concepts": {"notes": info, "chords": info, "tempos": {**info, "task": "regression"}},
        "seconds": {"load_model": 1.0, "total": 2.0},
    }
    md = table_markdown(table, summary)
    ours, rest = md.split("## MusicGen-large")
    paper = rest.split("##")[0]
    assert "| Model | Notes | Chords | Tempos (R²) | Avg. |" in ours
    assert f"{_expected(1, 0):.3f}" in ours
    assert "| Model | Notes | Chords | Tempos (R²) | Avg. |" in paper
    assert "0.850" in paper and "0.984" in paper and "0.985" in paper  # the paper's RFM row
    assert "Logistic" not in paper  # the paper reports no logistic row


def test_concept_names_aliases_and_bad_input():
    assert parse_concept_list("tempos,chord_progressions, notes") == (
        "notes",
        "progressions",
        "tempos",
    )
    with pytest.raises(ConfigError, match="valid: notes, intervals, scales, chords"):
        parse_concept_list("notes,chrods")
    with pytest.raises(ConfigError, match="at least|>= 6"):
        Table1Config(clips_per_class=5)


def test_cli_bad_concept_is_one_clear_error(capsys):
    assert main(["table1", "--concepts", "chrods", "--model", "random:tiny"]) == 2
    err = capsys.readouterr().err
    assert "unknown concept 'chrods'" in err and "time_signatures" in err


def test_table1_runs_end_to_end_on_a_random_model_and_resumes(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    argv = [
        "table1", "--model", "random:tiny", "--concepts", "chords,tempos",
        "--clips-per-class", "6", "--tempo-step", "80", "--seconds", "1",
        "--out", str(out), "--work", str(work), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "table1.json").read_text())
    first = summary["table"]
    assert list(first) == [label for _key, label in ROWS]
    assert set(first[dict(ROWS)["rfm_mean"]]) == {"chords", "tempos", "Avg."}
    assert summary["metric"] == {"chords": "accuracy", "tempos": "r2"}
    chords, tempos = summary["concepts"]["chords"], summary["concepts"]["tempos"]
    assert chords["n"] == {"train": 16, "val": 4, "test": 4} and chords["classes"] == 4
    assert tempos["task"] == "regression" and sum(tempos["n"].values()) == 18
    assert {"synthesise", "extract_mean", "extract_last", "train_rfm_mean", "baselines"} <= set(
        chords["seconds"]
    )
    assert not chords["scores_cached"]
    for name in ("table1.md", "table1.csv", "layer_scores.csv", "plots/chords_val.png"):
        assert (out / name).is_file()
    layer_scores = pd.read_csv(out / "layer_scores.csv")
    assert set(layer_scores["pooling"]) == {"mean", "last"}
    assert len(layer_scores[layer_scores["pooling"] == "last"]) == 2 * 4  # 2 concepts x 4 layers

    assert main(argv) == 0  # the second run reads datasets, features and scores from the cache
    again = json.loads((out / "table1.json").read_text())
    assert again["concepts"]["chords"]["scores_cached"]
    assert again["table"] == first
