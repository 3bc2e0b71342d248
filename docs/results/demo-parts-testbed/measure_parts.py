"""Measure the demo's second part for several concepts on the testbed (session 13).

Usage: ``PYTHONPATH=src python measure_parts.py intervals:P5 tempos:faster ...``; writes
``part-<concept>.json`` in the working folder (clips and caches under /tmp/demo-parts).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from musicrfm.experiments.demo import DemoConfig
from musicrfm.experiments.demo.part import parse_part, run_concept_part
from musicrfm.experiments.demo.report import json_default

torch.set_num_threads(1)
WORK = Path("/tmp/demo-parts")

for spec in sys.argv[1:]:
    concept, target = parse_part(spec)
    cfg = replace(DemoConfig(), part_concept=concept, part_target=target)
    t = time.perf_counter()
    part = run_concept_part(cfg, WORK / "work", WORK / f"out-{concept}", progress=False)
    part["wall_s"] = time.perf_counter() - t
    Path(f"part-{concept}.json").write_text(json.dumps(part, indent=1, default=json_default))
    print(spec, round(part["wall_s"]), flush=True)
