"""`musicrfm reproduce`: the paper's protocol end to end, by the existing stages.

:func:`prepare_reproduce` checks everything, loads the model, measures its per-step cost and
counts the plan; :func:`run_reproduce` then runs the stages in order -- synthesise
(SynTheory from the hub, ``synth.hub.fetch_balanced``, or the local generator,
``synth.generate_dataset``: :func:`resolve_source` picks one; both give the same folder format),
extract (``capture.extract_features``, content-addressed cache),
train (``probes.train_directions``, saved once per feature set; the same result gives Table 1's
mean-pooled scores through ``probes.tables.compare_probes``), Table 1 (plus an RFM on last-token
features; ``experiments.table1.build_table1``), the steering sweeps
(``experiments.sweep.run_sweep``, finished conditions skipped) -- and writes the tables. Each
stage skips what its output already holds, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.experiments.reproduce import tables as T
from musicrfm.experiments.reproduce.plan import (
    Plan,
    ReproduceOptions,
    SweepSpec,
    SynthSource,
    build_plan,
    data_size,
    measure_costs,
    run_concepts,
    scaled_top_k,
    sweep_specs,
)
from musicrfm.experiments.reproduce.protocol import Protocol, load_protocol
from musicrfm.files import write_json_atomic

if TYPE_CHECKING:
    from musicrfm.capture.features import FeatureSet
    from musicrfm.models.adapter import ModelAdapter

log = logging.getLogger(__name__)

STAGES = ("synthesise", "extract", "train", "table1", "sweeps", "tables")


@dataclass
class Prepared:
    """A checked run: the loaded model, the protocol, the options and the plan."""

    adapter: ModelAdapter
    model_id: str
    options: ReproduceOptions
    protocol: Protocol
    plan: Plan
    out: Path
    work: Path
    source: SynthSource


@dataclass
class ReproduceResult:
    """What a run did: per stage what it ran and skipped, the tables and their files."""

    plan: Plan
    stages: dict[str, dict[str, Any]]
    tables: dict[int, T.PaperTable]
    paths: dict[str, Path] = field(default_factory=dict)


def default_work(out: Path) -> Path:
    return out / "work"


def prepare_reproduce(
    model: Any,
    options: ReproduceOptions,
    *,
    out: str | os.PathLike[str],
    work: str | os.PathLike[str] | None = None,
    protocol: str | os.PathLike[str] | None = None,
    measure: bool = True,
    progress: bool = True,
) -> Prepared:
    """Check the options, load ``model``, time a few of its steps and count the plan.
    ``protocol``: a protocol file (default: the paper's, shipped with the package)."""
    from musicrfm.files import check_writable
    from musicrfm.models import load_model

    protocol = load_protocol(protocol)
    for n in options.tables:  # not-implemented numbers fail here, before the model loads
        info = protocol.table(n)
        if not info.implemented:
            raise ConfigError(f"table {n} ({info.title}, {info.section}): {info.reason}")
    if options.clap_checkpoint and not Path(options.clap_checkpoint).exists():
        raise ConfigError(f"--clap-checkpoint not found: {options.clap_checkpoint}")
    out = Path(out)
    work = Path(work) if work is not None else default_work(out)
    source = resolve_source(options, protocol, work)  # `--syntheory hub` offline fails here
    check_writable(out, what="--out", folder=True)
    adapter = load_model(model, device=options.device, dtype=options.dtype, progress=progress)
    paths = {c: str(_directions_placeholder(work, c)) for c in run_concepts(options, protocol)}
    costs = measure_costs(adapter, batch=options.batch, work=work / "probe") if measure else None
    plan = build_plan(
        str(adapter.info()["model_id"]), options, protocol, num_layers=int(adapter.num_layers),
        frame_rate=float(adapter.frame_rate), max_delay=int(adapter.max_delay),
        directions=paths, costs=costs, source=source,
    )  # fmt: skip
    return Prepared(adapter, plan.model, options, protocol, plan, out, work, source)


def _directions_placeholder(work: Path, concept: str) -> Path:
    return work / "directions" / concept / concept


def run_reproduce(
    prepared: Prepared,
    *,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
    on_condition: Callable[[Any, int], None] | None = None,
    command: str | None = None,
) -> ReproduceResult:
    """Run (or resume) every stage of the plan and write the tables into ``prepared.out``:
    ``tableN.md`` / ``tableN.json`` per table asked for and ``reproduce.json``.
    ``on_stage(name)`` is called after each finished stage, ``on_condition`` after each sweep
    condition (tests use them to interrupt a run)."""
    p = prepared
    opts, protocol, adapter = p.options, p.protocol, p.adapter
    concepts = run_concepts(opts, protocol)
    stages: dict[str, dict[str, Any]] = {}
    bar = _bar(progress, len(STAGES))

    def done(name: str, info: dict[str, Any], t: float) -> None:
        stages[name] = {**info, "seconds": round(time.perf_counter() - t, 2)}
        if bar is not None:
            bar.update(1)
        if on_stage is not None:
            on_stage(name)

    t = time.perf_counter()
    datasets = {
        c: _dataset(adapter, c, opts, protocol, p.work, p.source, progress) for c in concepts
    }
    done(
        "synthesise",
        {"source": p.source.kind, "clips": {c: len(d) for c, d in datasets.items()}},
        t,
    )

    t = time.perf_counter()
    features = {c: _features(adapter, ds, "mean", p.work, progress) for c, ds in datasets.items()}
    if 1 in opts.tables:
        for ds in datasets.values():
            _features(adapter, ds, "last", p.work, progress)
    done("extract", {"poolings": ["mean", "last"] if 1 in opts.tables else ["mean"]}, t)

    t = time.perf_counter()
    directions, trained = {}, []
    for c in concepts:
        directions[c], new = _directions(features[c], c, opts, p.work, progress, 1 in opts.tables)
        if new:
            trained.append(c)
    done("train", {"trained": trained, "loaded": [c for c in concepts if c not in trained]}, t)

    t = time.perf_counter()
    t1 = None
    if 1 in opts.tables:
        t1 = _table1(adapter, datasets, directions, opts, p.work, progress)
    done("table1", {"ran": t1 is not None}, t)

    t = time.perf_counter()
    classes = {c: _steer_classes(d, c, protocol) for c, d in directions.items()}
    specs, missing = sweep_specs(
        opts, protocol, model=p.model_id, num_layers=int(adapter.num_layers),
        directions={c: str(d) for c, d in directions.items()}, classes=classes,
    )  # fmt: skip
    sweeps: dict[str, Any] = {}
    for spec in specs:
        sweeps[spec.name] = _sweep(adapter, spec, p.work, progress, on_condition)
    done("sweeps", {"runs": {k: v["summary"] for k, v in sweeps.items()}}, t)

    t = time.perf_counter()
    tables = _tables(opts, protocol, t1, sweeps, missing, int(adapter.num_layers))
    header = _header(p, command)
    extra = {"model": p.model_id, "protocol_version": protocol.version, "options": asdict(opts)}
    paths: dict[str, Path] = {}
    for n, table in tables.items():
        for kind, path in table.write(p.out, header, extra).items():
            paths[f"table{n}_{kind}"] = path
    written: list[Any] = sorted(tables)
    controls = {
        k[len("controls-") :]: v["results"] for k, v in sweeps.items() if k.startswith("controls-")
    }
    if controls:
        for kind, path in T.write_controls(p.out, header, controls, protocol).items():
            paths[f"controls_{kind}"] = path
        written.append("controls")
    done("tables", {"written": written}, t)
    if bar is not None:
        bar.close()
    record = {
        "model": p.model_id,
        "model_info": {k: v for k, v in adapter.info().items() if not isinstance(v, list)},
        "protocol_version": protocol.version,
        "protocol": str(protocol.path),
        "command": command,
        "options": asdict(opts),
        "syntheory": {
            **p.source.to_dict(),
            "datasets": {c: str(Path(d.root)) for c, d in datasets.items()},
        },
        "plan": p.plan.to_dict(),
        "stages": stages,
        "sweeps": {k: str(v["folder"]) for k, v in sweeps.items()},
        "tables": {str(n): {"measured": t.measured, "notes": t.notes} for n, t in tables.items()},
    }
    paths["record"] = write_json_atomic(p.out / "reproduce.json", record, indent=2, default=str)
    return ReproduceResult(p.plan, stages, tables, paths)


def _bar(progress: bool, total: int) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="reproduce", unit="stage")


# ============================================================================ stages
def _table1_config(concept: str, opts: ReproduceOptions, protocol: Protocol) -> Any:
    """The Table 1 settings of one concept, whose clip folder the synthesise stage shares."""
    from musicrfm.experiments.table1 import Table1Config

    size = data_size(concept, opts, protocol)
    return Table1Config(
        concepts=(concept,), clips_per_class=size.clips_per_class, seed=opts.seed,
        budget=opts.budget, programs=None, tempo_step=size.tempo_step, octaves=None,
        seconds=opts.clip_seconds or float(protocol.value("dataset.clip_seconds")),
        device=opts.device, workers=opts.workers,
    )  # fmt: skip


def _dataset(
    adapter: ModelAdapter, concept: str, opts: ReproduceOptions, protocol: Protocol, work: Path,
    source: SynthSource, progress: bool,
) -> Any:  # fmt: skip
    """The concept's clips: local, the same folder Table 1 uses (the generator resumes it); from
    the hub, a balanced seeded sample of the same size and format in a folder of its own."""
    from musicrfm.experiments.table1.run import concept_dataset

    if source.kind == "hub":
        return _hub_dataset(adapter, concept, opts, protocol, work, source)
    cfg = _table1_config(concept, opts, protocol)
    return concept_dataset(adapter, concept, cfg, work / "datasets", progress=progress)


# ============================================================================ the clips' source
def resolve_source(options: ReproduceOptions, protocol: Protocol, work: Path) -> SynthSource:
    """Which clips the run uses (nothing is written, nothing downloaded). ``local``: the
    generator. ``hub``/``auto``: every concept already fetched into ``work`` (any model sample
    rate) is reused as is; else the hub when :func:`musicrfm.synth.hub.hub_status` says it can
    be used. Otherwise ``hub`` is one ConfigError saying how to fix it, ``auto`` the generator
    with a notice saying why."""
    from musicrfm.synth import hub

    asked = options.syntheory
    if asked == "local":
        return _local_source(asked)
    repo_id, revision = hub_ref(protocol)
    commit = _hub_cached(work, options, protocol)
    if commit is not False:
        return SynthSource("hub", asked, repo_id, revision, commit or None, cached=True)
    status = hub.hub_status(repo_id, revision)
    if status.usable:
        return SynthSource("hub", asked, repo_id, revision, status.commit)
    if asked == "hub":
        raise ConfigError(
            f"--syntheory hub: cannot read SynTheory ({repo_id}) from the hub: {status.reason}; "
            f"{status.fix}, or use --syntheory local (the SynTheory-equivalent generator)"
        )
    notice = (
        f"SynTheory from the local generator, not the hub: {status.reason} "
        f"(for the hub: {status.fix})"
    )
    return _local_source(asked, notice)


def hub_ref(protocol: Protocol) -> tuple[str, str | None]:
    """The protocol's hub id and pinned revision (a protocol file older than version 2 has
    none: the hub loader's defaults, which are the shipped protocol's)."""
    from musicrfm.synth import hub

    dataset = protocol.data.get("dataset", {})
    repo = dataset.get("hub_id", {}).get("value", hub.REPO_ID)
    revision = dataset.get("hub_revision", {}).get("value", hub.REVISION)
    return str(repo), (str(revision) if revision else None)


def _local_source(asked: str, notice: str | None = None) -> SynthSource:
    import musicrfm

    return SynthSource(
        "local", asked, version=musicrfm.__version__, spec_hash=generator_spec_hash(),
        notice=notice,
    )  # fmt: skip


def generator_spec_hash() -> str:
    """A hash of the local generator's code (``musicrfm.synth`` but its hub loader): a change
    that could change the clips changes it, whatever the version string says."""
    from importlib import resources

    h = hashlib.sha256()
    files = sorted(
        (f for f in resources.files("musicrfm.synth").iterdir() if f.name.endswith(".py")),
        key=lambda f: f.name,
    )
    for f in files:
        if f.name != "hub.py":
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def _hub_classes(concept: str, opts: ReproduceOptions, protocol: Protocol) -> list[str]:
    """The classes the local generator would make: every label, tempos' thinned BPMs."""
    from musicrfm.experiments.table1.config import TEMPO_RANGE
    from musicrfm.synth.concepts import get_concept

    if concept == "tempos":
        step = data_size(concept, opts, protocol).tempo_step
        return [str(b) for b in range(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1, step)]
    return [str(c) for c in get_concept(concept).labels]


def _hub_folder(
    work: Path, concept: str, opts: ReproduceOptions, protocol: Protocol, sample_rate: str
) -> Path:
    """``work/datasets/hub-<revision>/<concept>_<sr>hz_<s>s_<n>pc_seed<seed>_<tag>``: apart from
    the generator's folders (the two never mix), named by everything the clips depend on;
    ``sample_rate`` may be ``"*"`` (a glob, before the model is loaded)."""
    repo_id, revision = hub_ref(protocol)
    seconds = opts.clip_seconds or float(protocol.value("dataset.clip_seconds"))
    per = data_size(concept, opts, protocol).clips_per_class
    key = [repo_id, revision, _hub_classes(concept, opts, protocol)]
    tag = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:8]
    rev = "".join(ch if ch.isalnum() else "_" for ch in str(revision or "default"))[:12]
    name = f"{concept}_{sample_rate}hz_{seconds:g}s_{per}pc_seed{opts.seed}_{tag}"
    return work / "datasets" / f"hub-{rev}" / name


def _hub_cached(work: Path, opts: ReproduceOptions, protocol: Protocol) -> str | bool:
    """The commit (or "" when unknown) when every concept's hub folder is complete in
    ``work``; False when any is missing."""
    from musicrfm.synth.hub import cached_commit

    commits = []
    for c in run_concepts(opts, protocol):
        folder = _hub_folder(work, c, opts, protocol, "*")
        found = [cached_commit(f) for f in sorted(folder.parent.glob(folder.name))]
        complete = [commit for ok, commit in found if ok]
        if not complete:
            return False
        commits.append(complete[0] or "")
    return commits[0] if len(set(commits)) == 1 else ""


def _hub_dataset(
    adapter: ModelAdapter, concept: str, opts: ReproduceOptions, protocol: Protocol, work: Path,
    source: SynthSource,
) -> Any:  # fmt: skip
    """SynTheory clips of ``concept``: the protocol's clips per class (under --scale), drawn
    balanced and seeded, at the model's sample rate, mono, cut to the training clip length --
    what the local generator writes for the model."""
    from musicrfm.synth.hub import fetch_balanced

    sr = int(adapter.sample_rate)
    folder = _hub_folder(work, concept, opts, protocol, str(sr))
    return fetch_balanced(
        concept, folder, per_class=data_size(concept, opts, protocol).clips_per_class,
        classes=_hub_classes(concept, opts, protocol), seed=opts.seed,
        seconds=opts.clip_seconds or float(protocol.value("dataset.clip_seconds")),
        sample_rate=sr, repo_id=str(source.repo_id), revision=source.revision,
        commit=source.commit,
    )  # fmt: skip


def _features(
    adapter: ModelAdapter, dataset: Any, pooling: str, work: Path, progress: bool
) -> FeatureSet:
    """Every layer pooled, empty prompt: exactly Table 1's call, so both hit one cache."""
    from musicrfm.capture.extract import extract_features

    return extract_features(
        adapter, dataset, pooling=pooling, prompt="", cache_dir=work / "features",
        progress=progress,
    )  # fmt: skip


def _directions(
    features: FeatureSet, concept: str, opts: ReproduceOptions, work: Path, progress: bool,
    table1: bool,
) -> tuple[Path, bool]:  # fmt: skip
    """The concept's directions and multiclass probes, trained once per feature set and budget
    (``done.json`` marks a complete folder); returns (directions file, trained now). With
    ``table1`` the same training also gives Table 1's mean-pooled scores (RFM and baselines on
    its splits), saved beside it, so Table 1 trains no second RFM on these features."""
    from musicrfm.probes.training import save_train_result

    folder = _directions_folder(features, concept, opts, work)
    marker = folder / "done.json"
    if marker.is_file() and (not table1 or (folder / f"{MEAN_SCORES}.csv").is_file()):
        return folder / json.loads(marker.read_text())["file"], False
    result = _train(features, concept, opts, progress)
    if table1:
        _save_scores(folder, MEAN_SCORES, features, result)
    if marker.is_file():  # the directions were there; only Table 1's scores were missing
        return folder / json.loads(marker.read_text())["file"], False
    base = Path(save_train_result(result, folder))
    write_json_atomic(marker, {"file": base.name})
    return folder / base.name, True


# Table 1's baseline rows: the paper's linear probe and SynTheory's 2-layer MLP (it reports no
# logistic probe, which "fails to converge", and no difference of means); `musicrfm table1`
# measures those too
PAPER_BASELINES = ("ridge", "mlp")
MEAN_SCORES = "table1_mean"
LAST_SCORES = "table1_last"


def _directions_folder(
    features: FeatureSet, concept: str, opts: ReproduceOptions, work: Path
) -> Path:
    """Named by what the training depends on: the features (model, clips, capture) and the
    budget and seed; another scale or model gets another folder."""
    import musicrfm

    key = {k: features.meta.get(k) for k in ("fingerprint", "dataset_hash", "capture_version")}
    key.update(options=features.meta.get("options"), budget=opts.budget, seed=opts.seed)
    key["version"] = musicrfm.__version__
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return work / "directions" / f"{concept}-{digest[:12]}"


def _train(features: FeatureSet, concept: str, opts: ReproduceOptions, progress: bool) -> Any:
    """RFM probes of every layer: one-vs-rest directions (+ multiclass probes) or tempo's
    regression, as Table 1 and the sweeps train them."""
    from musicrfm.probes.training import train_directions

    return train_directions(
        features, label_column="label", concept=concept,
        task="regression" if concept == "tempos" else "binary", budget=opts.budget,
        seed=opts.seed, device=opts.device, progress=progress,
    )  # fmt: skip


def _save_scores(folder: Path, name: str, features: FeatureSet, result: Any) -> None:
    """Table 1's per-layer scores of one pooling: the RFM's (and, mean-pooled, the baselines')
    on the training result's splits; with the split counts."""
    from musicrfm.experiments.table1.config import task_name
    from musicrfm.experiments.table1.run import split_counts
    from musicrfm.files import write_text_atomic
    from musicrfm.probes.tables import compare_probes

    pooling = "mean" if name == MEAN_SCORES else "last"
    methods = PAPER_BASELINES if pooling == "mean" else ()
    scores = compare_probes(features, result, methods=methods).assign(pooling=pooling)
    cols = ["pooling", "concept", "layer", "method", "metric", "val", "test"]
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / f"{name}.csv", scores[cols].to_csv(index=False))
    info = {"task": task_name(result.task), **split_counts(result)}
    write_json_atomic(folder / f"{name}.json", info)


def _steer_classes(path: Path, concept: str, protocol: Protocol) -> list[str]:
    """What the trained directions can steer toward, in the concept's class order."""
    from musicrfm.experiments.reproduce.plan import steering_classes
    from musicrfm.probes.directions import ConceptDirections

    if concept == "tempos":
        return steering_classes(concept, protocol)
    have = {str(c) for c in ConceptDirections.load(path).classes}
    return [c for c in steering_classes(concept, protocol) if c in have]


def _table1(
    adapter: ModelAdapter, datasets: dict[str, Any], directions: dict[str, Path],
    opts: ReproduceOptions, work: Path, progress: bool,
) -> dict[str, Any]:  # fmt: skip
    """Table 1 from the mean-pooled scores the train stage saved and, per concept, an RFM on
    last-token features (trained once, its scores saved beside the directions)."""
    from musicrfm.experiments.table1 import build_table1

    parts, infos = [], {}
    for c, ds in datasets.items():
        folder = directions[c].parent
        if not (folder / f"{LAST_SCORES}.csv").is_file():
            last = _features(adapter, ds, "last", work, progress)
            _save_scores(folder, LAST_SCORES, last, _train(last, c, opts, progress))
        for name in (MEAN_SCORES, LAST_SCORES):
            parts.append(pd.read_csv(folder / f"{name}.csv"))
        infos[c] = json.loads((folder / f"{MEAN_SCORES}.json").read_text())
    scores = pd.concat(parts, ignore_index=True)
    return {"table": build_table1(scores), "scores": scores, "infos": infos}


def _sweep(
    adapter: ModelAdapter, spec: SweepSpec, work: Path, progress: bool,
    on_condition: Callable[[Any, int], None] | None,
) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) one sweep in its own folder, named by its config's hash."""
    from musicrfm.experiments.sweep.run import run_sweep
    from musicrfm.experiments.sweep.tables import paper_tables

    folder = spec.folder(work)
    run = run_sweep(
        spec.config, folder, model=adapter, on_condition=on_condition, progress=progress
    )
    frame = run.results
    if not frame.empty and "kind" in frame.columns:
        frame = frame.copy()
        frame.loc[frame["kind"] == "crossfade", "variant"] = "crossfade"  # one row for all pairs
    tables = paper_tables(frame) if not frame.empty else {}
    summary = {
        "conditions": run.conditions,
        "finished_now": run.finished,
        "skipped": run.skipped,
        "generated_clips": run.generated_clips,
        "reused_clips": run.reused_clips,
    }
    has_clap = "clap" in frame.columns and frame["clap"].notna().any()
    return {
        "folder": folder,
        "tables": tables,
        "summary": summary,
        "clap": bool(has_clap),
        "results": frame,
    }


def _tables(
    opts: ReproduceOptions,
    protocol: Protocol,
    t1: dict[str, Any] | None,
    sweeps: dict[str, Any],
    missing: dict[int, str],
    num_layers: int,
) -> dict[int, T.PaperTable]:
    out: dict[int, T.PaperTable] = {}
    if t1 is not None:
        n_test = {c: int(i["n"]["test"]) for c, i in t1["infos"].items()}
        out[1] = T.table1(protocol, t1["table"], n_test)
    if 2 in opts.tables:
        parts = [
            s["tables"]["table2_long"]
            for name, s in sweeps.items()
            if name.startswith("table2-") and "table2_long" in s["tables"]
        ]
        clap = any(s["clap"] for n, s in sweeps.items() if n.startswith("table2-"))
        long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["concept"])
        out[2] = T.table2(protocol, long, clap)
    for n, sweep, key in ((5, "table5", "table5"), (6, "table6", "table6")):
        if n in opts.tables:
            if n in missing:
                out[n] = T.not_measured(n, protocol, missing[n])
                continue
            s = sweeps[sweep]
            fn = T.table5 if n == 5 else T.table6
            out[n] = fn(protocol, s["tables"].get(key), s["clap"])
    for n in (8, 9, 10):
        if n not in opts.tables:
            continue
        if n in missing:
            out[n] = T.not_measured(n, protocol, missing[n])
            continue
        s = sweeps["ablations"]
        frame = s["tables"].get(f"table{n}")
        if n == 8:
            out[n] = T.table8(protocol, frame, s["clap"])
        elif n == 9:
            k_map = scaled_top_k(
                protocol.value("tables.9.top_k"), num_layers, int(protocol.value("model.layers"))
            )
            out[n] = T.table9(protocol, frame, s["clap"], k_map)
        else:
            out[n] = T.table10(protocol, frame, s["clap"])
    return out


def _header(p: Prepared, command: str | None) -> list[str]:
    o = p.options
    lines = [
        f"Model: {p.model_id}. Protocol v{p.protocol.version} "
        + ("(the paper's, as shipped)" if p.protocol.shipped else f"(MODIFIED: {p.protocol.path})")
        + "; paper: MusicGen-large.",
        f"Scale {o.scale:g} of the paper's sample sizes; probe budget {o.budget}; generations "
        f"of {p.plan.seconds:g} s; training clips of {p.plan.clip_seconds:g} s; seed {o.seed}; "
        f"device {o.device}, {o.dtype}.",
        f"Training clips: {p.source.describe()}.",
    ]
    if o.scale < 1 or o.budget != "paper":
        lines.append(
            "Reduced run: numbers at this scale check the pipeline, not the paper's claims."
        )
    if command:
        lines.append(f"Command: `{command}`")
    return lines
