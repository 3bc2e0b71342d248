"""Two concepts at once with a beats part: a note (or chord quality) plus onset directions
pulsed on the beats of a target tempo, judged by the detected BPM within 4%."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from musicrfm.errors import ConfigError
from musicrfm.experiments.pairs.config import PairsConfig, PartSpec, check_target
from musicrfm.experiments.pairs.scoring import ALONE, JOINT, UNSTEERED, attribute_hits
from musicrfm.theory import PITCH_CLASSES


def test_beat_targets_are_tempos_in_bpm() -> None:
    assert check_target("beats", "160") == "160" and check_target("beats", "92.5 BPM") == "92.5"
    for bad in ("fast", "0", "1000"):
        with pytest.raises(ConfigError, match="not a beat target; give a tempo in BPM"):
            check_target("beats", bad)
    cfg = PairsConfig(first=PartSpec("beats"), second=PartSpec("notes"), pairs=(("160", "A"),))
    with pytest.raises(ConfigError, match="steers beats: pass --no-conflict"):
        cfg.validate()


def test_a_beats_part_hits_within_four_percent() -> None:
    frame = pd.DataFrame({"bpm": [160.0, 166.0, 154.0, 150.0, np.nan, 80.0]})
    assert attribute_hits(frame, "beats", "160").tolist() == [1, 1, 1, 0, 0, 0]


def test_the_beats_part_is_pulsed_on_its_tempo(tmp_path) -> None:
    from musicrfm.experiments.pairs.run import part_direction
    from musicrfm.probes.directions import ConceptDirections

    def save(concept: str, classes: list[str]) -> str:
        v = torch.randn(2, len(classes), 1, 8, generator=torch.Generator().manual_seed(0))
        cd = ConceptDirections(concept, classes, v / v.norm(dim=-1, keepdim=True),
                               torch.rand(2, len(classes)), [0, 1],
                               meta={"model_id": "tiny", "num_layers": 2, "hidden_size": 8,
                                     "activation_norm": 10.0})  # fmt: skip
        return str(cd.save(tmp_path / concept))

    d = part_direction(save("onsets", ["none", "onset"]), PartSpec("beats", "0.2x"), "120", 2.0)
    assert d.target == "onset" and d.schedule.kind == "keyframes"
    assert [t for t, v in d.schedule.points if v == 1.0] == [0.25, 0.75, 1.25, 1.75, 2.25]
    n = part_direction(save("notes", list(PITCH_CLASSES)), PartSpec("notes", "0.1x"), "A", 2.0)
    assert n.target == "A" and n.schedule.kind == "constant"


def test_a_note_and_beat_pair_runs_to_the_report_on_a_random_model(tmp_path) -> None:
    """Note directions given, the onset direction trained as the beat headline trains it; 2 clips
    of 1.5 s a condition: the joint plan keyframes the beat, the BPMs are scored."""
    from musicrfm.experiments.demo import DemoConfig
    from musicrfm.experiments.pairs import run_pairs
    from musicrfm.models import random_model
    from musicrfm.probes.directions import ConceptDirections

    adapter = random_model("tiny", seed=0)
    g = torch.Generator().manual_seed(0)
    L, d = adapter.num_layers, adapter.hidden_size
    v = torch.randn(L, 12, 1, d, generator=g)
    notes = ConceptDirections("notes", list(PITCH_CLASSES), v / v.norm(dim=-1, keepdim=True),
                              torch.rand(L, 12, generator=g), list(range(L)),
                              meta={"model_id": adapter.model_id, "num_layers": L,
                                    "hidden_size": d, "activation_norm": 10.0})  # fmt: skip
    data = replace(DemoConfig.quick(), prompts=("acoustic piano", "violin"), seconds=1.5,
                   clips_per_class=2)  # fmt: skip
    cfg = PairsConfig(first=PartSpec("notes", "0.5x"), second=PartSpec("beats", "0.5x"),
                      pairs=(("A", "150"),), clips=2, controls=("random",), conflict=None,
                      data=data)  # fmt: skip
    out = tmp_path / "out"
    record = run_pairs(model=adapter, out=out, work=tmp_path / "work", config=cfg,
                       directions={"notes": notes}, progress=False)  # fmt: skip
    assert json.loads((out / "pairs.json").read_text()) == record
    (p,) = record["pairs"]
    assert [r["condition"] for r in p["rows"]] == [UNSTEERED, *ALONE, JOINT]
    said = record["plans"]["A+150"]["validator"]
    assert said["directions"] == ["notes:A", "onsets:onset"]
    frame = pd.read_csv(out / "results.csv")
    assert {"bpm", "beat"} <= set(frame.columns)
    assert (out / "directions" / "beats.safetensors").is_file()
