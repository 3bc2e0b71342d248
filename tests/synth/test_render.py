"""Rendering through TinySoundFont: shapes, crops, silence, reverb, soundfont lookup."""

from __future__ import annotations

import numpy as np
import pytest

from musicrfm.errors import RenderError
from musicrfm.synth.concepts import CONCEPTS, ClipSpec, Note, Selection
from musicrfm.synth.render import (
    Renderer,
    RenderOptions,
    add_reverb,
    find_soundfont,
    is_silent,
    peak_db,
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _note_clip(pitch: int = 69, program: int = 0, **kw: object) -> ClipSpec:
    notes = tuple(Note(t, t + 1.0, pitch) for t in (0.0, 1.0, 2.0, 3.0))
    return ClipSpec("notes", "k", 0, "A", {}, notes, program, **kw)  # type: ignore[arg-type]


def test_render_shape_level_and_pitch(renderer: Renderer) -> None:
    audio = renderer.render(_note_clip())
    assert audio.shape == (4 * 32000, 1) and audio.dtype == np.float32
    assert -40 < peak_db(audio) <= 0
    spectrum = np.abs(np.fft.rfft(audio[:32000, 0] * np.hanning(32000)))
    freqs = np.fft.rfftfreq(32000, 1 / 32000)
    assert abs(freqs[np.argmax(spectrum)] - 440.0) < 3.0  # A4 fundamental


def test_stereo_and_sample_rate() -> None:
    r = Renderer(options=RenderOptions(sample_rate=16000, channels=2, duration=1.5))
    audio = r.render(_note_clip())
    assert audio.shape == (24000, 2)
    assert not is_silent(audio)


def test_render_is_deterministic(renderer: Renderer) -> None:
    clip = CONCEPTS["time_signatures"].clips()[-1]  # reverb level 2, a crop
    note = CONCEPTS["notes"].clips(Selection(programs=(40,), octaves=(5,)))[0]
    first = renderer.render(note)
    a, b = renderer.render(clip), renderer.render(clip)
    assert np.array_equal(a, b)
    # nothing of an earlier clip (release tails) leaks into the next one
    assert np.array_equal(renderer.render(note), first)
    assert np.array_equal(Renderer().render(note), first)


def test_crop_matches_the_uncropped_track(renderer: Renderer) -> None:
    clip = next(c for c in CONCEPTS["tempos"].clips() if c.offset > 3.0)
    cropped = renderer.render(clip)
    long = Renderer(options=RenderOptions(duration=clip.offset + 4.0)).render(
        ClipSpec("tempos", "x", 0, "0", {}, clip.notes, clip.program, clip.drums)
    )
    start = int(round(clip.offset * 32000))
    np.testing.assert_allclose(cropped[:, 0], long[start : start + 4 * 32000, 0], atol=1e-4)


def test_silence_detection(renderer: Renderer) -> None:
    empty = ClipSpec("notes", "k", 0, "C", {}, (), 0)
    assert is_silent(renderer.render(empty))
    assert is_silent(np.full((100, 1), 1e-4, dtype=np.float32))
    assert not is_silent(np.full((100, 1), 1e-2, dtype=np.float32))
    assert peak_db(np.zeros((10, 1))) == -np.inf


def test_reverb_levels_lengthen_the_tail() -> None:
    sr = 16000
    dry = np.zeros((sr * 2, 1), dtype=np.float32)
    dry[100:200] = 0.5
    tails = []
    for level in (0, 1, 2):
        wet = add_reverb(dry, level, sr, seed=3)
        tails.append(float(np.sum(wet[sr // 2 :, 0] ** 2)))
    assert tails[0] == 0.0 < tails[1] < tails[2]
    assert np.array_equal(add_reverb(dry, 2, sr, seed=3), add_reverb(dry, 2, sr, seed=3))
    with pytest.raises(RenderError):
        add_reverb(dry, 3, sr)


def test_drum_kit_click_is_audible(renderer: Renderer) -> None:
    clip = CONCEPTS["tempos"].clips(Selection())[0]
    assert clip.drums and not is_silent(renderer.render(clip))


def test_missing_soundfont_says_how_to_get_one(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RenderError, match="--soundfont PATH"):
        find_soundfont("/nonexistent/font.sf2")
    monkeypatch.setenv("MUSICRFM_SOUNDFONT", "/nonexistent/other.sf2")
    with pytest.raises(RenderError, match="timgm6mb-soundfont"):
        find_soundfont()
    monkeypatch.delenv("MUSICRFM_SOUNDFONT")
    assert find_soundfont().name == "TimGM6mb.sf2"


def test_bad_render_options() -> None:
    with pytest.raises(RenderError, match="channels"):
        Renderer(options=RenderOptions(channels=3))
