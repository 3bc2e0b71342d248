"""The page's settings as a plan TOML file, and a plan file read back into the page.

Saving writes what ``musicrfm generate --plan plan.toml`` reads: one ``[[direction]]`` per knob
(absolute paths of the bundles), the note sequence as a ``[sequence]`` table (`sequence_table`,
the form the sequence compiler reads), and the chord progression and the played BPM together as
one ``[progression]`` table (`progression_table`: chords, bpm, bars_per_chord, the chord and
onset bundles as ``directions``, ``beat = true``, the pulses' length, and ``coef`` by role: the
chord slider's and the beat slider's η0), so the file compiles to the page's steering and loads
back as chord text, BPM, beat checkbox and strengths. Files saved before the ``[progression]``
table (a progression as keyframed ``[[direction]]`` entries) still load as knobs, at most
`MAX_KNOBS` of them. Loading an uploaded file never touches a path it names: each
``directions`` entry must be a loaded bundle (its name, its path, or a path ending in its file
name), and every field is checked by the plan's own classes before the page's controls are
filled. An upload is limited in size by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.studio.bundles import Bundle
from musicrfm.studio.request import (
    MAX_KNOBS,
    Request,
    beat_bundle,
    bundle_named,
    bundles_by_role,
    chord_bundles,
    parse_bpm,
)

PLAN_FIELDS = {"format_version", "seed", "name", "direction", "sequence", "progression"}
PAGE_GRID = {"beats_per_bar": 4.0, "fade_beats": 0.25}  # the page's grid: sequence defaults
RUN_IT = "run it with musicrfm generate --plan"


def plan_toml(req: Request, bundles: Mapping[str, Bundle]) -> str:
    """The request's steering as a plan file (knobs, the note sequence, then the chords and
    the beat as one ``[progression]``), in the order `Request.plan` puts them."""
    from musicrfm.steering.plan import PLAN_FORMAT_VERSION, parse_layers
    from musicrfm.steering.sequence import sequence_table
    from musicrfm.steering.toml_writer import dumps_toml

    if not req.steered:
        raise ConfigError(
            "nothing to save: pick a knob class, write notes or chords, or play the BPM"
        )
    data: dict[str, Any] = {"format_version": PLAN_FORMAT_VERSION}
    if req.knobs:
        plan, _ = replace(req, notes=None, chords=None, beat=None).plan(bundles)
        data = plan.to_dict(strict=True)
    if req.notes is not None:
        b = bundle_named(bundles, req.notes.bundle)
        data["sequence"] = sequence_table(
            req.notes.sequence(), b.path, b.coef(req.notes.strength, None), gate=req.gate,
            rows=req.rows, **parse_layers(req.layers or "all"),
        )  # fmt: skip
    table = progression_of(req, bundles)
    if table is not None:
        data["progression"] = table
    return "# musicrfm steering plan, saved by MusicRFM Studio\n" + dumps_toml(data)


def progression_of(req: Request, bundles: Mapping[str, Bundle]) -> dict[str, Any] | None:
    """The request's chords and beat as one ``[progression]`` table (None when it has
    neither): the progression `ChordLine` and `BeatLine` compile, the bundles they use, and
    ``coef`` by role (each slider's strength × its bundle's activation scale)."""
    from musicrfm.steering.plan import parse_layers
    from musicrfm.steering.progressions import (
        PARTS,
        make_progression,
        missing_role,
        progression_table,
    )

    chords, beat = req.chords, req.beat
    if chords is None and beat is None:
        return None
    sources: list[str] = []
    coef: dict[str, float] = {}
    parts: list[str] = []
    if chords is not None:
        by_role = chord_bundles(bundles)
        if not by_role:
            raise missing_role("root", f"chords {chords.chords!r}")
        parts = [p for p in PARTS if p in by_role]
        for part in parts:
            sources.append(str(by_role[part].path))
            coef[part] = by_role[part].coef(chords.strength, None)
    if beat is not None:
        b = beat_bundle(bundles)
        if b is None:
            raise missing_role("beat", f"playing the BPM {str(beat.bpm).strip() or '120'}")
        sources.append(str(b.path))
        coef["beat"] = b.coef(beat.strength, None)
    tempos = {parse_bpm(x.bpm) for x in (chords, beat) if x is not None}
    if len(tempos) > 1:
        raise ConfigError("the chords and the beat are at different BPMs; a plan file holds one")
    prog = make_progression(
        chords=chords.chords if chords is not None else None, bpm=tempos.pop(),
        bars_per_chord=chords.bars_per_chord if chords is not None else None,
        parts=parts or None, steer_beat=beat is not None,
        seconds=req.seconds if chords is None else None,
        span_seconds=req.seconds if beat is not None else None,
    )  # fmt: skip
    one = next(iter(coef.values())) if len(coef) == 1 else coef
    return progression_table(prog, sources, one, gate=req.gate, rows=req.rows,
                             **parse_layers(req.layers or "all"))  # fmt: skip


def resolve_bundle(src: Any, bundles: Mapping[str, Bundle]) -> tuple[Bundle, str]:
    """The loaded bundle a plan's ``directions`` entry means, and a note when it was matched by
    file name only. Anything else is an error: the page cannot point the server at a path."""
    text = str(src)
    if text in bundles:
        return bundles[text], ""
    path = Path(text).with_suffix("") if text.endswith((".json", ".safetensors")) else Path(text)
    for b in bundles.values():
        if path.is_absolute() and path == b.path:
            return b, ""
    for b in bundles.values():
        if path.name == b.path.name:
            return b, f"{text!r} read as the loaded bundle {b.name!r}"
    raise ConfigError(
        f"directions {text!r} are not loaded in this studio; loaded: {', '.join(bundles)} "
        "(start musicrfm serve --directions ... to add some)"
    )


def layer_spec(d: Any) -> str:
    """A direction's layer fields as the layers text box's spec (``top:3+exp:0.95``)."""
    parts = [] if d.layers == "all" else [",".join(str(x) for x in d.layers)]
    if d.top_k is not None:
        parts.append(f"top:{int(d.top_k)}")
    w0 = f":{d.w0:g}" if d.w0 != 1.0 else ""
    if d.weighting == "linear":
        parts.append(f"linear{w0}")
    elif d.weighting == "exponential":
        parts.append(f"exp:{d.kappa:g}{w0}")
    elif w0:
        parts.append(f"uniform{w0}")
    return "+".join(parts) or "all"


def schedule_fields(s: Any, frame_rate: float) -> tuple[str, str]:
    """(kind, parameters text) of a schedule for the editor (keyframe times in seconds)."""
    to_s = 1.0 if s.unit == "seconds" else 1.0 / frame_rate
    if s.kind == "keyframes":
        return "keyframes", ", ".join(f"{t * to_s:g}={v:g}" for t, v in s.points)
    items = []
    if s.start:
        items.append(f"start={s.start * to_s:g}s")
    if s.duration is not None:
        items.append(f"duration={s.duration * to_s:g}s")
    for key, value in s.params:
        if value is not None and value != s.spec.params.get(key):
            time_param = key in s.spec.time_params
            items.append(f"{key}={value * to_s:g}s" if time_param else f"{key}={value:g}")
    return s.kind, ", ".join(items)


def load_plan_text(
    text: str, bundles: Mapping[str, Bundle], *, frame_rate: float = 50.0
) -> dict[str, Any]:
    """A plan file's text -> the page's control values by `CONTROL_NAMES` (only those the plan
    sets) and a ``summary`` line."""
    import tomllib

    from musicrfm.steering.plan import SteeringDirection
    from musicrfm.steering.sequence import split_table

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not a valid TOML file: {exc}") from None
    unknown = set(data) - PLAN_FIELDS
    if unknown:
        raise ConfigError(f"unknown plan field(s) {sorted(unknown)}; valid: {sorted(PLAN_FIELDS)}")
    items = _tables(data.get("direction", []), "direction")
    seqs = _tables(data.get("sequence", []), "sequence")
    progs = _tables(data.get("progression", []), "progression")
    if len(items) > MAX_KNOBS or len(seqs) > 1 or len(progs) > 1:
        raise ConfigError(
            f"this plan has {len(items)} directions, {len(seqs)} sequences and {len(progs)} "
            f"progressions; the page edits at most {MAX_KNOBS} knobs, one sequence and one "
            f"progression ({RUN_IT})"
        )
    if seqs and progs and "chords" in progs[0]:
        raise ConfigError(
            f"this plan plays a note sequence and chords; the page plays one of them ({RUN_IT})"
        )
    out: dict[str, Any] = {}
    notes: list[str] = []
    first: Any = None
    for i, item in enumerate(items):
        if "directions" not in item:
            raise ConfigError("each [[direction]] needs directions = '<bundle>'")
        b, note = resolve_bundle(item["directions"], bundles)
        notes += [note] if note else []
        d = SteeringDirection.from_dict({**item, "directions": str(b.path)})
        target = b.classes[b.directions.class_index(d.target)] if d.target else b.classes[0]
        out[f"target{i}"] = f"{b.name}:{target}"
        out[f"strength{i}"] = round(d.coef / b.coef(1.0, d.target), 4)
        if first is None:
            first = d
            out["sched_kind"], out["sched_params"] = schedule_fields(d.schedule, frame_rate)
            out["sched_unit"] = "seconds"
        elif d.schedule != first.schedule:
            notes.append(f"knob {i + 1}'s schedule differs; all knobs use knob 1's")
    for i in range(len(items), MAX_KNOBS):
        out[f"target{i}"], out[f"strength{i}"] = "—", 0.0
    if seqs:
        seq, fields = split_table(seqs[0])
        b, note = resolve_bundle(fields.pop("directions"), bundles)
        notes += [note] if note else []
        coef = fields.pop("coef", 0.3)
        d = SteeringDirection(str(b.path), target=b.classes[0], coef=coef, **fields)
        out.update(notes=seq.notes, bpm=_bpm_text(seq.tempo), seq_bundle=b.name,
                   beats_per_note=seq.beats_per_note, seq_strength=round(d.coef / b.scale, 4))  # fmt: skip
        first = first or d
    else:
        out["notes"] = ""
    out["chords"], out["play_beat"] = "", False
    what = ([f"{len(items)} knob(s)"] if items else []) + (["a note sequence"] if seqs else [])
    if progs:
        values, d, said = progression_values(progs[0], bundles)
        if seqs and "bpm" in values and values["bpm"] != out["bpm"]:
            raise ConfigError(
                f"this plan's sequence is at {out['bpm']} BPM and its progression at "
                f"{values['bpm']}; the page has one BPM box ({RUN_IT})"
            )
        out.update(values)
        notes += said
        first = first or d
        what += (["chords"] if values.get("chords") else []) + (["the beat"] * values["play_beat"])
    if first is None:
        raise ConfigError(
            "this plan steers nothing (no [[direction]], [sequence] or [progression])"
        )
    out.update(layers=layer_spec(first), gate=first.gate, rows=first.rows)
    if data.get("seed") is not None:
        out["seed"] = int(data["seed"])
    out["summary"] = ", ".join(what) + (f" ({'; '.join(notes)})" if notes else "")
    return out


def progression_values(
    table: Mapping[str, Any], bundles: Mapping[str, Bundle]
) -> tuple[dict[str, Any], Any, list[str]]:
    """A ``[progression]`` table -> (the page's chord, BPM, beat and strength values, its first
    compiled direction, notes). It is compiled exactly as ``generate --plan`` compiles it (so
    every field is checked), against the loaded bundles; what the page cannot show is an
    error that says so."""
    from musicrfm.steering.plan import compile_progression
    from musicrfm.steering.progressions import direction_role, split_progression_table

    if "directions" not in table:
        raise ConfigError("a [progression] needs directions = ['<chord or onset bundle>', ...]")
    src = table["directions"]
    named = [src] if isinstance(src, str) else src
    if not isinstance(named, list) or not named:
        raise ConfigError(f"[progression] directions must be bundle names or paths, got {src!r}")
    notes: list[str] = []
    used: dict[str, Bundle] = {}
    for item in named:
        b, note = resolve_bundle(item, bundles)
        notes += [note] if note else []
        used[direction_role(b.directions)] = b
    resolved = {**table, "directions": [str(b.path) for b in used.values()]}
    prog, sources, fields = split_progression_table(resolved)
    coef = fields.pop("coef", 0.3)
    plan = compile_progression(prog, sources, coef, **fields)
    for name in ("notes", "tempo_reference", *PAGE_GRID):
        grid = prog.chords or prog.notes
        value = getattr(grid, name, None) if name in PAGE_GRID else table.get(name)
        if value is not None and (name not in PAGE_GRID or value != PAGE_GRID[name]):
            raise ConfigError(f"the page cannot show this [progression]'s {name} ({RUN_IT})")
    if prog.tempo is not None:
        raise ConfigError(f"the page does not steer a tempo curve ({RUN_IT})")
    page = bundles_by_role(bundles)
    for role, b in used.items():
        if page.get(role) is not b:
            raise ConfigError(
                f"this [progression] steers with {b.name!r}; the page steers its {role} part "
                f"with {page[role].name!r}, the first loaded ({RUN_IT})"
            )
    out: dict[str, Any] = {"play_beat": prog.beat is not None}
    if prog.chords is not None:
        missing = sorted(set(chord_bundles(bundles)) - set(prog.parts))
        if missing:
            raise ConfigError(
                f"this [progression] steers the chords' {' and '.join(prog.parts)} only; the "
                f"page also steers their {' and '.join(missing)} ({RUN_IT})"
            )
        c = prog.chords
        out.update(chords=c.chords, bpm=_bpm_text(c.tempo))
        out["beats_per_note"] = (
            c.bars_per_chord * c.beats_per_bar if c.bars_per_chord is not None else None
        )
    by_path = {str(b.path): (role, b) for role, b in used.items()}
    strengths: dict[str, set[float]] = {}
    for d in plan.directions:
        role, b = by_path[str(d.directions)]
        key = "beat_strength" if role == "beat" else "seq_strength"
        strengths.setdefault(key, set()).add(round(d.coef / b.coef(1.0, d.target), 4))
    for key, values in strengths.items():
        if len(values) > 1:
            notes.append(f"the chord parts' strengths differ ({sorted(values)}); the page uses one")
        out[key] = sorted(values)[-1]
    if prog.beat is not None:
        out.update(bpm=_bpm_text(prog.beat.tempo), seconds=round(prog.beat.seconds, 4))
    return out, plan.directions[0], notes


def _bpm_text(tempo: Any) -> str:
    """A tempo as the page's BPM box shows it (``120``, ``90..130``)."""
    v = tempo.to_value()
    return f"{v:g}" if isinstance(v, float) else str(v)


def _tables(value: Any, name: str) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list) or not all(isinstance(x, Mapping) for x in value):
        raise ConfigError(f"[{name}] must be a table or an array of tables")
    return list(value)
