"""The studio's engine: one model, its bundles, and clips made the way ``musicrfm generate``
makes them.

Every clip goes through `musicrfm.steering.generate` with the plan `Request.plan` builds, inside
a `live_control` block (the run's live knobs, stop flag and token tap), and is written by
`GenerationResult.save`: the WAV and the JSON sidecar are the CLI's, so ``musicrfm generate
--reproduce clip.json`` regenerates the clip bit for bit. A clip whose knobs moved while it
played records the changes in its sidecar (``"live"``: the step each took effect at), and
`reproduce_take` replays them exactly. One lock serialises generation: the model is loaded
once per process and shared by every browser session.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicrfm.models.adapter import ModelAdapter
from musicrfm.steering.live import GenerationStopped, LiveEvent, live_control
from musicrfm.studio.bundles import Bundle
from musicrfm.studio.request import Knob, Request
from musicrfm.studio.runs import Run, RunRegistry, new_run_id
from musicrfm.studio.stream import StreamDecoder, mono

log = logging.getLogger(__name__)

LIVE_NOTE = (
    "knobs moved while this clip played: 'events' are the steps each change took effect at; "
    "musicrfm.studio.reproduce_take(sidecar) replays them bit for bit"
)


@dataclass
class Take:
    """One clip the studio made: its audio (mono preview of the result), where it was saved,
    what steered it. sidecar is None for a stopped clip (it cannot be regenerated)."""

    request: Request
    audio: np.ndarray
    sample_rate: int
    wav: Path
    sidecar: Path | None
    plan: Any
    events: list[LiveEvent] = field(default_factory=list)
    stopped_at: float | None = None
    elapsed: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    detection: Any = None  # the note detector's reading, computed once (`figures.detection`)
    flac: Path | None = None  # a 24-bit FLAC copy of the take (smaller; same clip)

    @property
    def seconds(self) -> float:
        return len(self.audio) / float(self.sample_rate)

    @property
    def files(self) -> list[str]:
        return [str(p) for p in (self.wav, self.sidecar, self.flac) if p is not None]


class Studio:
    """What every browser session shares: the model, the bundles, the runs, one lock."""

    def __init__(
        self,
        adapter: ModelAdapter,
        bundles: Mapping[str, Bundle],
        out_dir: Path,
        *,
        threads: int = 1,
    ):
        self.adapter = adapter
        self.threads = int(threads)  # torch threads of every generating thread
        self.bundles = dict(bundles)
        self.out_dir = Path(out_dir)
        self.runs = RunRegistry()
        self.lock = threading.Lock()
        self._count = 0
        self._count_lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return int(self.adapter.sample_rate)

    def sampling_defaults(self) -> dict[str, float]:
        """Guidance, temperature, top-k from the model's generation config (as the demo)."""
        from musicrfm.experiments.demo.stages import sampling_options

        out: dict[str, float] = {"guidance_scale": 3.0, "temperature": 1.0, "top_k": 250}
        out.update(sampling_options(self.adapter))
        return out

    def warm_up(self) -> float:
        """Run one short steered clip through the whole path (hooks, token tap, codec, note
        detector) so that the first Generate of a session is as quick as the later ones;
        returns the seconds it took."""
        from musicrfm.evaluation.detectors import detect_note

        started = time.perf_counter()
        knobs: tuple[Knob, ...] = ()
        if self.bundles:
            b = next(iter(self.bundles.values()))
            knobs = (Knob(b.name, b.classes[0], 0.0),)
        req = Request("warm up", seconds=0.5, knobs=knobs, **self.sampling_defaults())
        plan, _ = req.plan(self.bundles)
        run = Run(new_run_id(), self.sample_rate)
        run.live.on_tokens = StreamDecoder(self.adapter, run.push).tap
        with self.lock, live_control(run.live):
            result = self._generate(req, plan)
        detect_note(mono(result.audio), self.sample_rate, window_s=0.5, hop_s=0.25)
        return time.perf_counter() - started

    def new_run(self, run_id: str | None = None) -> Run:
        return self.runs.add(Run(run_id or new_run_id(), self.sample_rate))

    # ------------------------------------------------------------ clips
    def render(self, request: Request, run: Run | None = None, *, session: str = "local") -> Take:
        """Generate one clip, streaming its audio into ``run`` (a new one if None) and reading
        its live knobs; save it (WAV + sidecar, or the WAV of what was made before a stop)."""
        plan, knobs = request.plan(self.bundles)
        run = run or self.new_run()
        run.bind(knobs)
        decoder = StreamDecoder(self.adapter, run.push)
        run.live.on_tokens = decoder.tap
        result, stopped_at = None, None
        started = time.perf_counter()
        try:
            with self.lock, live_control(run.live):
                result = self._generate(request, plan)
        except GenerationStopped as stop:
            stopped_at = stop.step / float(self.adapter.frame_rate)
        finally:
            try:
                decoder.finish(result.audio if result is not None else None)
            finally:
                run.close(stopped=result is None)
        elapsed = time.perf_counter() - started
        folder = self.out_dir / re.sub(r"[^A-Za-z0-9_-]", "", session)[:32]
        stem = self._stem(request)
        if result is None:
            audio = decoder.decoded()
            wav = _write_wav(folder / f"{stem}-stopped.wav", audio, self.sample_rate)
            return Take(request, audio, self.sample_rate, wav, None, plan,
                        list(run.live.events), stopped_at, elapsed)  # fmt: skip
        events = list(run.live.events)
        if events:
            result.meta["live"] = {"events": [e.to_dict() for e in events], "note": LIVE_NOTE}
        wav = result.save(folder / f"{stem}.wav")
        flac = _write_flac(wav.with_suffix(".flac"), result.audio, self.sample_rate)
        return Take(request, mono(result.audio), self.sample_rate, wav, wav.with_suffix(".json"),
                    plan, events, None, elapsed, result.meta, flac=flac)  # fmt: skip

    def _generate(self, request: Request, plan: Any) -> Any:
        import torch

        from musicrfm.steering.generation import generate

        # handlers run on server worker threads, which do not inherit the main thread's setting
        torch.set_num_threads(self.threads)
        results = generate(
            self.adapter, request.prompt, plan=plan, seed=request.seed, options=request.options()
        )
        return results[0]

    def _stem(self, request: Request) -> str:
        with self._count_lock:
            self._count += 1
            n = self._count
        slug = re.sub(r"[^a-z0-9]+", "-", request.prompt.lower()).strip("-")[:32] or "clip"
        kind = "steered" if request.steered else "unsteered"
        return f"{n:04d}-{slug}-{kind}-s{request.seed}"

    def ab(self, request: Request, *, session: str = "local") -> tuple[Take, Take]:
        """A: the request unsteered, B: steered, at the same seed."""
        return (
            self.render(request.unsteered(), session=session),
            self.render(request, session=session),
        )

    def grid(
        self, request: Request, strengths: Sequence[float], *, session: str = "local"
    ) -> list[Take]:
        """One clip per strength of the first knob (or of the sequence), same seed."""
        return [self.render(request.with_strength(s), session=session) for s in strengths]


def reproduce_take(sidecar: str | Path | dict[str, Any], model: ModelAdapter | None = None) -> Any:
    """`musicrfm.steering.generation.reproduce` (which replays the live knob changes a studio
    sidecar records, as `musicrfm generate --reproduce` does)."""
    from musicrfm.steering.generation import reproduce

    return reproduce(sidecar, model)


def _write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """The take as 24-bit FLAC, for download beside the float WAV the sidecar names (the
    sidecar's ``audio_sha256`` is of the generated samples, so either reproduces)."""
    import soundfile as sf

    from musicrfm.files import write_atomic

    samples = np.asarray(audio, np.float32)
    samples = samples.T if samples.ndim == 2 else samples
    write_atomic(path, lambda tmp: sf.write(str(tmp), samples, sample_rate, format="FLAC",
                                            subtype="PCM_24"))  # fmt: skip
    return path


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio, np.float32), sample_rate, format="WAV", subtype="FLOAT")
    return path
