"""The page's settings as a plan TOML file, and a plan file read back into the page.

Saving writes what ``musicrfm generate --plan plan.toml`` reads: one ``[[direction]]`` per knob
(absolute paths of the bundles), the note sequence as a ``[sequence]`` table (`sequence_table`,
the form the sequence compiler reads) and a chord progression as its compiled keyframed
``[[direction]]`` entries (the page loads back at most `MAX_KNOBS` of those). Loading an uploaded file never
touches a path it names: each ``directions`` entry must be a loaded bundle (its name, its path,
or a path ending in its file name), and every field is checked by the plan's own classes before
the page's controls are filled. An upload is limited in size by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from musicrfm.errors import ConfigError
from musicrfm.studio.bundles import Bundle
from musicrfm.studio.request import MAX_KNOBS, Request, bundle_named

PLAN_FIELDS = {"format_version", "seed", "name", "direction", "sequence"}


def plan_toml(req: Request, bundles: Mapping[str, Bundle]) -> str:
    """The request's steering as a plan file (knobs, then the note sequence)."""
    from musicrfm.steering.plan import PLAN_FORMAT_VERSION, parse_layers
    from musicrfm.steering.sequence import sequence_table
    from musicrfm.steering.toml_writer import dumps_toml

    if not req.steered:
        raise ConfigError("nothing to save: pick a knob class or write a note sequence")
    data: dict[str, Any] = {"format_version": PLAN_FORMAT_VERSION}
    if req.knobs or req.chords is not None:  # chords as their compiled, keyframed directions
        plan, _ = replace(req, notes=None).plan(bundles)
        data = plan.to_dict(strict=True)
    if req.notes is not None:
        b = bundle_named(bundles, req.notes.bundle)
        data["sequence"] = sequence_table(
            req.notes.sequence(), b.path, b.coef(req.notes.strength, None), gate=req.gate,
            rows=req.rows, **parse_layers(req.layers or "all"),
        )  # fmt: skip
    return "# musicrfm steering plan, saved by MusicRFM Studio\n" + dumps_toml(data)


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
    if len(items) > MAX_KNOBS or len(seqs) > 1:
        raise ConfigError(
            f"this plan has {len(items)} directions and {len(seqs)} sequences; the page edits at "
            f"most {MAX_KNOBS} knobs and one sequence (run it with musicrfm generate --plan)"
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
        out.update(notes=seq.notes, bpm=str(seq.tempo.to_value()), seq_bundle=b.name,
                   beats_per_note=seq.beats_per_note, seq_strength=round(d.coef / b.scale, 4))  # fmt: skip
        first = first or d
    else:
        out["notes"] = ""
    out["chords"] = ""  # a saved progression comes back as its keyframed directions
    if first is None:
        raise ConfigError("this plan steers nothing (no [[direction]] and no [sequence])")
    out.update(layers=layer_spec(first), gate=first.gate, rows=first.rows)
    if data.get("seed") is not None:
        out["seed"] = int(data["seed"])
    what = f"{len(items)} knob(s)" + (", a note sequence" if seqs else "")
    out["summary"] = what + (f" ({'; '.join(notes)})" if notes else "")
    return out


def _tables(value: Any, name: str) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list) or not all(isinstance(x, Mapping) for x in value):
        raise ConfigError(f"[{name}] must be a table or an array of tables")
    return list(value)
