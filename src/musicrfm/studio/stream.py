"""Decoder input ids as the model feeds them → audio chunks, while it generates.

The steering hooks' token tap (:mod:`musicrfm.steering.live`) hands over the ids of every
decoder position as it is fed. Frame f is complete once codebook k's token has arrived at
position f + delay[k] + 1 for every k, i.e. at position f + max_delay + 1 (the position
convention of :mod:`musicrfm.models.adapter`). `StreamDecoder` decodes the complete frames with
the model's own codec and emits the samples not sent yet, holding back the last frame (a codec
may interpolate toward the next one).

It decodes the whole prefix each time while the clip is short (exact: the bundled model's codec
is causal, so a prefix decodes to a prefix of the final audio), in chunks that grow with the
prefix so the cost stays a small multiple of one full decode; past ``window_frames`` it decodes
a sliding window with ``context_frames`` of context and crossfades the seam (a preview only: the
finished clip is the one `generate` decodes, and `finish` sends its remaining samples).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from musicrfm.models.adapter import ModelAdapter

Emit = Callable[[np.ndarray], None]


class StreamDecoder:
    """Collects tapped ids of batch row 0 and emits float32 mono chunks through ``emit``.

    first_frames: frames in the first chunk (small: it sets when sound starts);
    growth: a later chunk waits for this share of the frames sent so far (at least
    ``min_frames``, at most ``max_frames``).
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        emit: Emit,
        *,
        first_frames: int = 10,
        min_frames: int = 10,
        max_frames: int = 50,
        growth: float = 0.5,
        window_frames: int = 500,
        context_frames: int = 100,
        crossfade_s: float = 0.02,
    ) -> None:
        self.adapter = adapter
        self.emit = emit
        self.delays = list(adapter.delays)
        self.k = len(self.delays)
        self.hop = int(round(adapter.sample_rate / adapter.frame_rate))
        self.first_frames = first_frames
        self.min_frames = min_frames
        self.max_frames = max_frames
        self.growth = growth
        self.window_frames = window_frames
        self.context_frames = context_frames
        self.crossfade = int(crossfade_s * adapter.sample_rate)
        self._ids: list[np.ndarray] = []  # position -> (K,) ids of batch row 0
        self.sent = 0  # samples emitted
        self.sent_frames = 0  # frames whose samples are all emitted
        self._tail: np.ndarray | None = None  # decoded samples held back past `sent`

    # ------------------------------------------------------------ the token tap
    def tap(self, position: int, ids: np.ndarray) -> None:
        """`musicrfm.steering.live.TokenTap`: ids (B·K, S) of positions ``position ..``."""
        rows = np.asarray(ids)[: self.k]
        for j in range(rows.shape[1]):
            p = position + j
            if p < len(self._ids):
                self._ids[p] = rows[:, j].copy()
            elif p == len(self._ids):
                self._ids.append(rows[:, j].copy())
        frames = self.complete_frames
        todo = frames - 1 - self.sent_frames  # keep one frame back
        need = self.first_frames if self.sent == 0 else self._chunk_frames()
        if todo >= need:
            self._emit_until(frames)

    @property
    def complete_frames(self) -> int:
        return max(len(self._ids) - max(self.delays) - 1, 0)

    @property
    def seconds(self) -> float:
        return self.sent / float(self.adapter.sample_rate)

    def _chunk_frames(self) -> int:
        want = int(self.growth * self.sent_frames)
        return min(max(want, self.min_frames), self.max_frames)

    # ------------------------------------------------------------ decoding
    def codes(self, frames: int, start: int = 0) -> torch.Tensor:
        """(1, K, frames - start) codes of frames ``start .. frames - 1``."""
        ids = np.stack(self._ids, axis=1)  # (K, positions)
        rows = [ids[k, start + d + 1 : frames + d + 1] for k, d in enumerate(self.delays)]
        return torch.as_tensor(np.stack(rows)[None].astype(np.int64))

    def decoded(self) -> np.ndarray:
        """Every complete frame decoded (what a stopped generation leaves)."""
        frames = self.complete_frames
        if frames == 0:
            return np.zeros(0, dtype=np.float32)
        return self._decode(frames, 0)

    def _decode(self, frames: int, start: int) -> np.ndarray:
        return mono(self.adapter.decode_codes(self.codes(frames, start)))

    def _emit_until(self, frames: int) -> None:
        end_frame = frames - 1
        windowed = frames > self.window_frames
        start = max(self.sent_frames - self.context_frames, 0) if windowed else 0
        audio = self._decode(frames, start)
        offset = start * self.hop
        piece = audio[self.sent - offset : end_frame * self.hop - offset]
        if windowed and self._tail is not None and len(piece):
            n = min(self.crossfade, len(self._tail), len(piece))
            ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
            piece = piece.copy()
            piece[:n] = (1 - ramp) * self._tail[:n] + ramp * piece[:n]
        self._tail = audio[end_frame * self.hop - offset :]
        self._send(piece)
        self.sent_frames = end_frame

    def _send(self, piece: np.ndarray) -> None:
        if len(piece):
            self.sent += len(piece)
            self.emit(np.ascontiguousarray(piece, dtype=np.float32))

    def finish(self, audio: np.ndarray | None) -> None:
        """Send what is left: the rest of the finished clip's audio (or of the decoded prefix
        when there is none, after a stop)."""
        full = self.decoded() if audio is None else mono(audio)
        self._send(full[self.sent :])


def mono(audio: np.ndarray) -> np.ndarray:
    """(..., samples) -> (samples,) float32, channels averaged (a stereo model's preview)."""
    a = np.asarray(audio, dtype=np.float32)
    return a.reshape(-1, a.shape[-1]).mean(axis=0)
