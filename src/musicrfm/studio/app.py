"""MusicRFM Studio's page (Gradio Blocks) and its handlers.

Layout: the controls on the left (prompt, length, seed, sampling; three live knobs and a note
sequence or chord progression, and the BPM played as onset pulses; layers, gate, rows and the schedule editor with its φ(t) preview; the plan file; the
concept browser), the results on the right (live player, the clip, the detector's trace,
downloads, A/B and the strength grid).

Threads and state: each browser session has its own `Session` (``gr.State``: its current run
and its cancel flag). Generate, A/B and the grid share one queue (``concurrency_id="model"``,
one at a time: requests queue, the page shows their place); knobs, Stop and previews skip the
queue (``queue=False``), so they act at once while a clip is being generated; Generate first
runs an unqueued `Handlers.begin`, so a Stop also cancels a request still waiting its turn. A
knob moved while a clip plays reaches the run's `LiveControl` and changes the steering from the
next decoder step. Every user mistake is one line in the status box (or, for the φ(t) preview,
under the controls), never a traceback; the server logs requests (session, prompt, settings),
not audio.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from musicrfm.errors import ConfigError, MusicRFMError
from musicrfm.studio import figures
from musicrfm.studio.engine import Studio, Take
from musicrfm.studio.plans import load_plan_text, plan_toml
from musicrfm.studio.request import (
    BEAT_KNOB,
    MAX_KNOBS,
    MAX_SECONDS,
    MAX_STRENGTH,
    SAFE_STRENGTH,
    SEQUENCE_KNOB,
    BeatLine,
    ChordLine,
    Knob,
    NoteLine,
    Request,
    keyframe_spec,
    knob_choices,
    parse_choice,
)
from musicrfm.studio.runs import Run

log = logging.getLogger(__name__)

NONE = "—"
BEATS_PER_BAR = 4.0  # the page's grid (the sequence default): the beats box / 4 = bars per chord
AUDIO: dict[str, Any] = {"type": "filepath", "interactive": False, "buttons": ["download"]}
GRID_CLIPS = 6
SCHEDULE_HELP = (
    "keyframes: `time=value, …` in the unit chosen (bars at the sequence's BPM), values 0–1; "
    "other kinds: `start=1s, duration=2s` (CLI syntax). The knobs share this schedule; a note "
    "sequence makes its own."
)
INTRO = """# MusicRFM Studio
Steer **{model}** toward musical concepts while it plays. A knob adds its concept direction to
the decoder's hidden states at every step; **move it while the clip is generated and the
steering changes from the next decoder step** (you hear it a fraction of a second later, as
the stream catches up). Strength is in units of the median activation norm (0.1 = a push of
a tenth of the residual stream's typical size); beyond ±{safe} the instrument starts to change.
A note sequence (`C E | G`) or a chord progression (`C G Am F`) keyframes directions along a
BPM grid; chords need chord-root or chord-quality bundles (`musicrfm serve --directions`)."""


@dataclass
class Session:
    """One browser session's state: its current run, whether to cancel A/B or grid, its id."""

    id: str = field(default_factory=lambda: secrets.token_hex(4))
    run: Run | None = None
    cancel: bool = False


@dataclass(frozen=True)
class Controls:
    """The page's inputs in the order the handlers receive them (`CONTROL_NAMES`)."""

    prompt: str
    seconds: float
    seed: float
    temperature: float
    top_k: float
    top_p: float
    guidance_scale: float
    targets: tuple[str, ...]
    strengths: tuple[float, ...]
    notes: str
    bpm: str
    beats_per_note: float | None
    seq_bundle: str
    seq_strength: float
    layers: str
    gate: float
    rows: str
    sched_kind: str
    sched_params: str
    sched_unit: str
    chords: str = ""
    play_beat: bool = False
    beat_strength: float = 0.3

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Controls:
        v = list(values)
        head, v = v[:7], v[7:]
        targets, v = tuple(v[:MAX_KNOBS]), v[MAX_KNOBS:]
        strengths, v = tuple(v[:MAX_KNOBS]), v[MAX_KNOBS:]
        return cls(*head, targets, strengths, *v)

    def request(self, studio: Studio) -> Request:
        knobs, slots = [], []
        for i, (choice, s) in enumerate(zip(self.targets, self.strengths)):
            picked = parse_choice(choice, studio.bundles)
            if picked is not None:
                knobs.append(Knob(picked[0], picked[1], s))
                slots.append(f"knob{i}")
        notes, chords = None, None
        beat = BeatLine(self.bpm, self.beat_strength) if self.play_beat else None
        if str(self.chords or "").strip():
            bars = float(self.beats_per_note) / BEATS_PER_BAR if self.beats_per_note else None
            chords = ChordLine(str(self.chords).strip(), self.seq_strength, bpm=self.bpm,
                               bars_per_chord=bars)  # fmt: skip
        if str(self.notes or "").strip():
            notes = NoteLine(
                self.notes, self.seq_bundle, self.seq_strength, bpm=self.bpm,
                beats_per_note=float(self.beats_per_note) if self.beats_per_note else None,
            )  # fmt: skip
        return Request(
            self.prompt, seconds=self.seconds, seed=self.seed, temperature=self.temperature,
            top_k=self.top_k, top_p=self.top_p, guidance_scale=self.guidance_scale,
            knobs=tuple(knobs), notes=notes, chords=chords, beat=beat, layers=self.layers, gate=self.gate,
            rows=self.rows, schedule=self.schedule(), slots=tuple(slots),
        )  # fmt: skip

    def schedule(self) -> str:
        kind, params = self.sched_kind or "constant", str(self.sched_params or "").strip()
        if kind == "keyframes":
            return keyframe_spec(params, self.sched_unit, self.bpm)
        return f"{kind}:{params}" if params else kind


def warning_text(strengths: Sequence[float]) -> str:
    """The safe-range warning for the knobs' strengths ('' when all are inside it)."""
    out = []
    for name, s in strengths:
        try:
            v = float(s)
        except (TypeError, ValueError):
            continue
        if abs(v) > SAFE_STRENGTH:
            out.append(f"{name} at {v:+.2f}")
    if not out:
        return ""
    return (
        f"⚠ **beyond the safe range ±{SAFE_STRENGTH}**: {', '.join(out)}. Expect the instrument "
        "to change and the clip to lose its shape (on the bundled model adherence falls from "
        "0.97 at 0.05× to 0.81 at 0.15×)."
    )


def status_line(take: Take, what: str = "") -> str:
    """What the status box says about a finished take."""
    r = take.request
    number = take.wav.name.split("-", 1)[0]
    head = f"**{what or 'clip'} {number}**: seed {r.seed}, {take.seconds:.2f} s in {take.elapsed:.1f} s"
    if take.stopped_at is not None:
        head += f"; ■ stopped at {take.stopped_at:.2f} s (no sidecar: a stopped clip cannot be regenerated)"
    if take.events:
        moves = ", ".join(f"{e.coef:+.3f} η0 at step {e.step}" for e in take.events[:6])
        head += f"; {len(take.events)} live change(s): {moves}"
    return head + ". " + figures.detection_summary(take)


def chord_text(studio: Studio) -> str:
    """Which loaded bundles a chord progression steers (for the page's help line)."""
    from musicrfm.studio.request import chord_bundles

    found = chord_bundles(studio.bundles)
    return ", ".join(f"{part} {b.name}" for part, b in found.items()) or "none loaded"


def beat_text(studio: Studio) -> str:
    """The beat checkbox's help line: the loaded onset bundle, or how to load one."""
    from musicrfm.studio.request import beat_bundle

    b = beat_bundle(studio.bundles)
    if b is None:
        return (
            "needs onset directions; none loaded: musicrfm serve --model mini-beat "
            "--directions models/musicgen-mini-beat/directions/onsets"
        )
    from musicrfm.steering.progressions import DEFAULT_BEAT_LEAD

    lead = "half a beat" if DEFAULT_BEAT_LEAD == 0.5 else f"{DEFAULT_BEAT_LEAD:g} beat"
    return (
        f"pulses the onset directions {b.name} on the BPM over the whole clip, each pulse "
        f"peaking {lead} before its beat (pulses on the beats made the model strike between "
        "them; this puts its strikes on the beats)"
    )


def notes_bundles(studio: Studio) -> list[str]:
    """Bundles a note sequence can use (note concepts first)."""
    names = [b.name for b in studio.bundles.values() if b.concept == "notes"]
    return names or list(studio.bundles)


def default_values(studio: Studio) -> dict[str, Any]:
    """The controls' values when the page opens, by `CONTROL_NAMES` (knob 1 toward G at 0.1
    when the bundles have a G, the model's own sampling settings)."""
    choices = knob_choices(studio.bundles)
    first = next((c for c in choices if c.endswith(":G")), choices[0] if choices else NONE)
    sampling = studio.sampling_defaults()
    d: dict[str, Any] = {
        "prompt": "acoustic piano, middle register", "seconds": 4.0, "seed": 0,
        "temperature": sampling["temperature"], "top_k": sampling["top_k"], "top_p": 0.0,
        "guidance_scale": sampling["guidance_scale"], "notes": "", "bpm": "120",
        "beats_per_note": None, "seq_bundle": notes_bundles(studio)[0], "seq_strength": 0.15,
        "layers": "all", "gate": 1.0, "rows": "both", "sched_kind": "constant",
        "sched_params": "", "sched_unit": "seconds", "chords": "", "play_beat": False,
        "beat_strength": 0.3,
    }  # fmt: skip
    for i in range(MAX_KNOBS):
        d[f"target{i}"] = first if i == 0 else NONE
        d[f"strength{i}"] = 0.1 if i == 0 else 0.0
    return d


def build_blocks(studio: Studio) -> Any:
    """The page, wired to ``studio``."""
    import gradio as gr

    from musicrfm.steering.schedule_registry import schedule_kinds

    bundles = studio.bundles
    choices = [NONE, *knob_choices(bundles)]
    d = default_values(studio)

    kinds = [k.name for k in schedule_kinds(saveable=True)]

    with gr.Blocks(title="MusicRFM Studio") as blocks:
        session = gr.State(lambda: Session())  # a new one per browser session
        run_id = gr.Textbox(visible=False, elem_id="studio-run-id")
        gr.Markdown(INTRO.format(model=studio.adapter.model_id, safe=SAFE_STRENGTH))
        with gr.Row():
            with gr.Column(scale=5):
                prompt = gr.Textbox(d["prompt"], label="Prompt", elem_id="studio-prompt")
                with gr.Row():
                    seconds = gr.Slider(1, MAX_SECONDS, value=d["seconds"], step=0.5, label="Seconds",
                                        elem_id="studio-seconds")  # fmt: skip
                    seed = gr.Number(d["seed"], precision=0, label="Seed", elem_id="studio-seed")
                    dice = gr.Button("New seed", scale=0, min_width=90, elem_id="studio-dice")
                with gr.Accordion("Sampling", open=False), gr.Row():
                    temperature = gr.Number(d["temperature"], label="Temperature")
                    top_k = gr.Number(d["top_k"], precision=0, label="Top-k")
                    top_p = gr.Number(d["top_p"], label="Top-p (0: off)")
                    guidance = gr.Number(d["guidance_scale"], label="Guidance scale")
                gr.Markdown(
                    f"### Live knobs\nStrength × median activation norm, signed (negative steers "
                    f"away); safe range ±{SAFE_STRENGTH}. Move them while a clip plays."
                )
                targets, strengths = [], []
                for i in range(MAX_KNOBS):
                    with gr.Row():
                        targets.append(gr.Dropdown(
                            choices, value=d[f"target{i}"], label=f"Knob {i + 1}: concept:class",
                            elem_id=f"studio-knob{i}-target", scale=2,
                        ))  # fmt: skip
                        strengths.append(gr.Slider(
                            -0.5, 0.5, value=d[f"strength{i}"], step=0.01,
                            label=f"Knob {i + 1} strength", elem_id=f"studio-knob{i}", scale=3,
                        ))  # fmt: skip
                warning = gr.Markdown("", elem_id="studio-warning")
                with gr.Accordion("Note sequence or chords on the beat grid", open=False):
                    gr.Markdown(
                        "Notes as in `musicrfm generate --notes`: `C E G` (one bar each) or "
                        "`C E | G` (bars); or chords as in `--chords`: `C G Am F` (a bar each, "
                        "or the beats box's beats each; needs chord bundles: "
                        f"{chord_text(studio)}). BPM `120` or a ramp `90..130` (the grid only). "
                        "One strength steers the whole line, live."
                    )
                    with gr.Row():
                        notes = gr.Textbox(d["notes"], label="Notes", placeholder="C E | G",
                                           elem_id="studio-notes")  # fmt: skip
                        bpm = gr.Textbox(d["bpm"], label="BPM", elem_id="studio-bpm")
                        beats = gr.Number(
                            d["beats_per_note"], label="Beats per note or chord (empty: a bar)"
                        )
                    chords = gr.Textbox(d["chords"], label="Chords", placeholder="C G Am F",
                                        elem_id="studio-chords")  # fmt: skip
                    with gr.Row():
                        seq_bundle = gr.Dropdown(notes_bundles(studio), value=d["seq_bundle"],
                                                 label="Note directions")  # fmt: skip
                        seq_strength = gr.Slider(-0.5, 0.5, value=d["seq_strength"], step=0.01,
                                                 label="Sequence / chords strength",
                                                 elem_id="studio-seq-strength")  # fmt: skip
                    with gr.Row():
                        play_beat = gr.Checkbox(d["play_beat"], label="Play the BPM (onset pulses)",
                                                info=beat_text(studio), elem_id="studio-play-beat")  # fmt: skip
                        beat_strength = gr.Slider(-0.5, 0.5, value=d["beat_strength"], step=0.01,
                                                  label="Beat strength", elem_id="studio-beat-strength")  # fmt: skip
                with gr.Accordion("Layers, gate, schedule", open=False):
                    with gr.Row():
                        layers = gr.Textbox(d["layers"], label="Layers (all, top:3, 2-5, exp:0.95)")
                        gate = gr.Slider(0, 1, value=d["gate"], step=0.05, label="Gate p")
                        rows = gr.Dropdown(["both", "conditional", "contrast", "unconditional"],
                                           value=d["rows"], label="Guidance rows")  # fmt: skip
                    with gr.Row():
                        sched_kind = gr.Dropdown(kinds, value=d["sched_kind"], label="Schedule")
                        sched_unit = gr.Radio(["seconds", "bars"], value=d["sched_unit"],
                                              label="Keyframe times in")  # fmt: skip
                    sched_params = gr.Textbox(d["sched_params"], label="Schedule parameters", info=SCHEDULE_HELP,
                                              elem_id="studio-schedule")  # fmt: skip
                    phi = gr.Plot(label="φ(t) preview", show_label=False, elem_id="studio-phi")
                plan_msg = gr.Markdown("", elem_id="studio-plan-msg")
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", elem_id="studio-generate")
                    stop = gr.Button("Stop", variant="stop", elem_id="studio-stop")
                    ab = gr.Button("A/B", elem_id="studio-ab")
                    grid = gr.Button("Strength grid", elem_id="studio-grid")
                grid_values = gr.Textbox("0, 0.05, 0.1, 0.15", label="Grid strengths (knob 1)",
                                         elem_id="studio-grid-values")  # fmt: skip
                with gr.Accordion("Plan file (TOML)", open=False), gr.Row():
                    save = gr.Button("Save plan")
                    plan_out = gr.File(label="plan.toml", interactive=False)
                    plan_in = gr.File(label="Load plan (.toml, ≤ 64 kB)", file_types=[".toml"],
                                      type="filepath")  # fmt: skip
                with gr.Accordion("Concept browser", open=False):
                    browse = gr.Dropdown(list(bundles), value=next(iter(bundles)), label="Bundle")
                    about = gr.Markdown()
                    scores = gr.Plot(label="per-layer scores", show_label=False)
            with gr.Column(scale=6):
                status = gr.Markdown("Press **Generate**.", elem_id="studio-status")
                gr.HTML('<div id="studio-live-status">live player idle</div>')
                audio = gr.Audio(label="Clip", **AUDIO,
                                 elem_id="studio-audio")  # fmt: skip
                trace = gr.Plot(label="What the detector hears", show_label=False,
                                elem_id="studio-trace")  # fmt: skip
                files = gr.File(label="Downloads: WAV, FLAC + JSON sidecar (musicrfm generate --reproduce)",
                                file_count="multiple", interactive=False, elem_id="studio-files")  # fmt: skip
                with gr.Tab("A/B"):
                    with gr.Row():
                        audio_a = gr.Audio(label="A: unsteered", **AUDIO)
                        audio_b = gr.Audio(label="B: steered", **AUDIO)
                    ab_info = gr.Markdown()
                with gr.Tab("Strength grid"):
                    grid_info = gr.Markdown()
                    with gr.Row():
                        grid_audio = [
                            gr.Audio(label=f"clip {i + 1}", visible=False, **AUDIO)
                            for i in range(GRID_CLIPS)
                        ]

        controls = [
            prompt, seconds, seed, temperature, top_k, top_p, guidance, *targets, *strengths,
            notes, bpm, beats, seq_bundle, seq_strength, layers, gate, rows, sched_kind,
            sched_params, sched_unit, chords, play_beat, beat_strength,
        ]  # fmt: skip
        blocks.handlers = wire(gr, studio, locals())  # type: ignore[attr-defined]
    return blocks


class Handlers:
    """What the page's events call, as methods (the page wires them in `wire`; tests call them
    the same way). Each returns the values of its event's outputs; ``SKIP`` leaves an output
    as it is."""

    SKIP: Any = None  # set to gr.skip() by `wire`

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def request(self, values: Sequence[Any]) -> Request:
        return Controls.from_values(values).request(self.studio)

    # ------------------------------------------------------------ queued: the model
    def begin(self, run_id: str, sess: Session) -> str:
        """Generate pressed (unqueued, before the request joins the queue): a Stop from now on
        cancels it, even while it still waits its turn. Returns the run id."""
        sess.cancel = False
        return run_id

    def generate(self, run_id: str, sess: Session, *values: Any) -> tuple:
        """Generate: (status, audio path, trace figure, download files)."""
        skip = (self.SKIP,) * 3
        try:
            run = self.studio.new_run(run_id or None)
        except MusicRFMError as exc:
            return (f"⚠ {exc}", *skip)
        if sess.cancel:  # Stop was pressed while this request waited in the queue
            run.close(stopped=True)
            return ("■ stopped before it started", *skip)
        sess.run = run
        try:
            req = self.request(values)
            log.info("[%s] generate %r %.1fs seed %d knobs %s notes %r chords %r beat %r", sess.id,
                     req.prompt, req.seconds, req.seed, _knobs_text(req), req.notes and req.notes.notes,
                     req.chords and req.chords.chords, req.beat and req.beat.bpm)  # fmt: skip
            take = self.studio.render(req, run, session=sess.id)
        except MusicRFMError as exc:
            run.close()
            return (f"⚠ {exc}", *skip)
        except Exception as exc:  # a bug: log it, keep the page usable
            run.close()
            log.exception("[%s] generation failed", sess.id)
            return (f"⚠ internal error: {type(exc).__name__}: {exc}", *skip)
        fig = figures.trace_figure(take, self.studio.bundles, self.studio.adapter.frame_rate)
        return status_line(take), str(take.wav), fig, take.files

    def ab(self, sess: Session, *values: Any) -> tuple:
        """A/B at one seed: (audio A, audio B, info)."""
        try:
            req = self.request(values)
            log.info(
                "[%s] A/B %r seed %d knobs %s", sess.id, req.prompt, req.seed, _knobs_text(req)
            )
            if not req.steered:
                raise ConfigError("A/B compares unsteered with steered: pick a knob class first")
            sess.cancel = False
            a = self._tracked(sess, req.unsteered())
            b = None if sess.cancel else self._tracked(sess, req)
        except MusicRFMError as exc:
            return self.SKIP, self.SKIP, f"⚠ {exc}"
        info = f"A — {status_line(a, 'unsteered')}"
        if b is not None:
            info += f"\n\nB — {status_line(b, 'steered')}"
        return str(a.wav), str(b.wav) if b is not None else None, info

    def grid(self, sess: Session, text: str, *values: Any) -> tuple[str, list[Take]]:
        """The strength grid: (a Markdown table, the takes)."""
        req = self.request(values)
        strengths = _grid_values(text)
        log.info("[%s] grid %r seed %d strengths %s", sess.id, req.prompt, req.seed, strengths)
        sess.cancel = False
        takes = []
        for s in strengths:
            if sess.cancel:
                break
            takes.append(self._tracked(sess, req.with_strength(s)))
        lines = ["| strength | what the detector heard |", "|---|---|"]
        lines += [
            f"| {_first_strength(t.request):+.2f} | {figures.detection_summary(t)} |" for t in takes
        ]
        return "\n".join(lines), takes

    def _tracked(self, sess: Session, req: Request) -> Take:
        """A clip of an A/B pair or a grid: its own run, stoppable from the page."""
        run = self.studio.new_run()
        sess.run = run
        return self.studio.render(req, run, session=sess.id)

    # ------------------------------------------------------------ unqueued: at once
    def knob(self, sess: Session, knob: str, *values: Any) -> str:
        """A knob moved: the running clip (if any) steers with it from its next decoder step.
        Returns the safe-range warning. values: the strengths of every live knob, in order."""
        value = values[KNOB_NAMES.index(knob)]
        run = sess.run
        if run is not None and not run.finished:
            try:
                v = float(value)
                if abs(v) <= MAX_STRENGTH and run.set_strength(knob, v):
                    log.info("[%s] live %s -> %+.3f at step %d", sess.id, knob, v, run.live.step)
            except (TypeError, ValueError, ConfigError):
                pass  # the warning says what is wrong
        # the beat's strength (last) is not held to the notes' safe range: zip leaves it out
        labels = [f"knob {i + 1}" for i in range(MAX_KNOBS)] + ["sequence"]
        return warning_text(list(zip(labels, values)))

    def stop(self, sess: Session) -> None:
        sess.cancel = True
        if sess.run is not None:
            log.info("[%s] stop at step %d", sess.id, sess.run.live.step)
            sess.run.stop()

    def preview(self, *values: Any) -> tuple:
        """The φ(t) preview: (figure, what is wrong with the settings, '' when nothing)."""
        try:
            req = self.request(values)
            plan, _ = req.plan(self.studio.bundles)
        except MusicRFMError as exc:
            return self.SKIP, f"⚠ {exc}"
        return figures.schedule_figure(plan, self.studio.adapter.frame_rate, req.seconds), ""

    def browse(self, name: str) -> tuple:
        b = self.studio.bundles.get(name)
        if b is None:
            return "⚠ unknown bundle", self.SKIP
        return b.describe(), figures.scores_figure(b)

    def save_plan(self, sess: Session, *values: Any) -> tuple:
        """Save plan: (plan file path, status). The file holds the knobs, the note sequence,
        and the chords and the beat as one ``[progression]`` (`plan_toml`)."""
        try:
            req = self.request(values)
            text = plan_toml(req, self.studio.bundles)
        except MusicRFMError as exc:
            return self.SKIP, f"⚠ {exc}"
        folder = self.studio.out_dir / sess.id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "plan.toml"
        path.write_text(text)
        return str(path), f"plan saved: {path.name} (musicrfm generate PROMPT --plan plan.toml)"

    def load_plan(self, path: str | None) -> list[Any]:
        """An uploaded plan into the controls: [each control's value or SKIP..., status]."""
        if not path:
            return [self.SKIP] * (len(CONTROL_NAMES) + 1)
        try:
            loaded = load_plan_text(
                _read_upload(path), self.studio.bundles, frame_rate=self.studio.adapter.frame_rate
            )
        except MusicRFMError as exc:
            return [self.SKIP] * len(CONTROL_NAMES) + [f"⚠ plan not loaded: {exc}"]
        return [loaded.get(n, self.SKIP) for n in CONTROL_NAMES] + [
            f"plan loaded: {loaded['summary']}"
        ]


def wire(gr: Any, studio: Studio, c: dict[str, Any]) -> Handlers:
    """Connect the page's events to `Handlers` (``c``: the components by name)."""
    h = Handlers(studio)
    h.SKIP = gr.skip()
    controls, session = c["controls"], c["session"]
    model = dict(concurrency_id="model", concurrency_limit=1)
    now = dict(queue=False, show_progress="hidden")

    c["generate"].click(h.begin, [c["run_id"], session], [c["run_id"]], js=START_JS, **now).then(
        h.generate, [c["run_id"], session, *controls],
        [c["status"], c["audio"], c["trace"], c["files"]], show_progress="minimal", **model,
    )  # fmt: skip
    c["ab"].click(h.ab, [session, *controls], [c["audio_a"], c["audio_b"], c["ab_info"]], **model)

    def on_grid(sess: Session, text: str, *values: Any) -> list[Any]:
        try:
            table, takes = h.grid(sess, text, *values)
        except MusicRFMError as exc:
            return [f"⚠ {exc}"] + [gr.skip()] * GRID_CLIPS
        label = "strength {:+.2f}"
        outs = [gr.update(value=str(t.wav), visible=True, label=label.format(_first_strength(t.request)))
                for t in takes]  # fmt: skip
        return [table] + outs + [gr.update(value=None, visible=False)] * (GRID_CLIPS - len(takes))

    c["grid"].click(on_grid, [session, c["grid_values"], *controls],
                    [c["grid_info"], *c["grid_audio"]], **model)  # fmt: skip

    live_sliders = [*c["strengths"], c["seq_strength"], c["beat_strength"]]
    for knob, slider in zip(KNOB_NAMES, live_sliders):
        slider.change(lambda sess, *v, knob=knob: h.knob(sess, knob, *v), [session, *live_sliders],
                      [c["warning"]], trigger_mode="always_last", **now)  # fmt: skip
    c["stop"].click(h.stop, [session], None, js=STOP_JS, **now)
    c["dice"].click(lambda: random.randrange(2**31 - 1), None, [c["seed"]], **now)
    for comp in (c["sched_kind"], c["sched_params"], c["sched_unit"], c["notes"], c["bpm"],
                 c["beats"], c["seconds"], c["chords"], c["play_beat"], *c["targets"]):  # fmt: skip
        comp.change(h.preview, controls, [c["phi"], c["plan_msg"]], **now)
    c["browse"].change(h.browse, [c["browse"]], [c["about"], c["scores"]], **now)
    c["save"].click(h.save_plan, [session, *controls], [c["plan_out"], c["status"]], **now)
    c["plan_in"].upload(h.load_plan, [c["plan_in"]], [*controls, c["status"]], **now)
    c["blocks"].load(h.browse, [c["browse"]], [c["about"], c["scores"]], **now)
    c["blocks"].load(h.preview, controls, [c["phi"], c["plan_msg"]], **now)
    return h


START_JS = (
    "(...args) => { const S = window.musicrfmStudio; args[0] = S.start(S.newId()); return args; }"
)
STOP_JS = "() => { if (window.musicrfmStudio) window.musicrfmStudio.stop(); }"
KNOB_NAMES = [f"knob{i}" for i in range(MAX_KNOBS)] + [SEQUENCE_KNOB, BEAT_KNOB]
CONTROL_NAMES = (
    ["prompt", "seconds", "seed", "temperature", "top_k", "top_p", "guidance_scale"]
    + [f"target{i}" for i in range(MAX_KNOBS)]
    + [f"strength{i}" for i in range(MAX_KNOBS)]
    + ["notes", "bpm", "beats_per_note", "seq_bundle", "seq_strength", "layers", "gate", "rows"]
    + ["sched_kind", "sched_params", "sched_unit", "chords", "play_beat", "beat_strength"]
)
MAX_PLAN_BYTES = 64 * 1024


def _read_upload(path: str) -> str:
    from pathlib import Path

    p = Path(path)
    if p.stat().st_size > MAX_PLAN_BYTES:
        raise ConfigError(f"the plan file is {p.stat().st_size} bytes; at most {MAX_PLAN_BYTES}")
    try:
        return p.read_text()
    except UnicodeDecodeError:
        raise ConfigError("the plan file is not UTF-8 text") from None


def _first_strength(req: Request) -> float:
    if req.knobs:
        return req.knobs[0].strength
    line = req.notes or req.chords or req.beat
    return line.strength if line is not None else 0.0


def _grid_values(text: str) -> list[float]:
    from musicrfm.studio.request import strength

    items = [x for x in str(text or "").replace(";", ",").split(",") if x.strip()]
    if not items:
        raise ConfigError("give the grid's strengths, e.g. 0, 0.05, 0.1")
    if len(items) > GRID_CLIPS:
        raise ConfigError(f"at most {GRID_CLIPS} grid strengths")
    return [strength("grid strength", x.strip()) for x in items]


def _knobs_text(req: Request) -> str:
    return ", ".join(f"{k.bundle}:{k.target}{k.strength:+.2f}" for k in req.knobs) or "none"
