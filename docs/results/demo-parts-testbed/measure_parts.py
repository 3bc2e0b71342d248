"""Measure the demo's second part for several concepts on the testbed (lead, session 13)."""
import json, sys, time
from dataclasses import replace
from pathlib import Path
import torch
torch.set_num_threads(1)
from musicrfm.experiments.demo import DemoConfig
from musicrfm.experiments.demo.part import parse_part, run_concept_part
from musicrfm.experiments.demo.report import json_default

for spec in sys.argv[1:]:
    concept, target = parse_part(spec)
    cfg = replace(DemoConfig(), part_concept=concept, part_target=target)
    t = time.perf_counter()
    part = run_concept_part(cfg, Path("/tmp/demo-parts/work"), Path(f"/tmp/demo-parts/out-{concept}"), progress=False)
    part["wall_s"] = time.perf_counter() - t
    Path(f"part-{concept}.json").write_text(json.dumps(part, indent=1, default=json_default))
    print(spec, round(part["wall_s"]), flush=True)
