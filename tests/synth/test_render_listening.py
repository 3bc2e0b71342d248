"""Check labels by listening to the rendered files (librosa), not by trusting the generator.

Clips are sampled with fixed seeds from the full concepts (92 tonal GM programs), rendered to disk
by `generate_dataset`, read back and analysed:
- notes (octaves 2-6): the dominant chroma pitch class equals the label in >= 95% of clips;
- chords: the best-matching of 48 triad templates (12 roots x 4 qualities) has the labelled
  quality in >= 90% of clips and the labelled pitch classes dominate the chroma;
- intervals: the two strongest chroma pitch classes are the interval's two notes (for an
  octave, the strongest is the root) in >= 90% of clips;
- tempos: librosa's beat-tracked tempo equals the label up to a tempo octave (x1/2, x1, x2)
  within 5% in >= 90% of clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from musicrfm import theory
from musicrfm.synth import SynthDataset, generate_dataset

librosa = pytest.importorskip("librosa")

SR = 32000


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("listen")


def _chroma(audio: np.ndarray, fmin_midi: int) -> np.ndarray:
    audio = audio[: 3 * SR]  # the tested clips repeat their pattern within the first 3 s
    chroma = librosa.feature.chroma_cqt(
        y=audio,
        sr=SR,
        hop_length=4096,
        fmin=librosa.midi_to_hz(fmin_midi),
        n_octaves=7,
        bins_per_octave=24,  # two bins per semitone suffice (half the cost of 36) ...
        tuning=0.0,  # ... because the soundfont is tuned to A4 = 440 Hz
    )
    profile = chroma.mean(axis=1)
    return profile / max(float(profile.sum()), 1e-12)


def _clips(ds: SynthDataset) -> list[tuple[dict, np.ndarray]]:
    return [(ds.rows.iloc[i].to_dict(), ds.load_audio(i)) for i in range(len(ds))]


def test_note_pitch_class_by_chroma(folder: Path) -> None:
    ds = generate_dataset("notes", folder, octaves=[2, 3, 4, 5, 6], limit_per_class=8, seed=7)
    clips = _clips(ds.filter(concept="notes"))
    assert len(clips) >= 90  # 12 classes x 8, minus any silent render
    assert len({row["program"] for row, _ in clips}) > 40  # spread over the programs
    hits = [int(np.argmax(_chroma(audio, 24))) == int(row["pitch_class"]) for row, audio in clips]
    assert np.mean(hits) >= 0.95, f"{np.mean(hits):.1%} of note clips match their pitch class"


def _templates() -> list[tuple[str, int, np.ndarray]]:
    out = []
    for quality in theory.CHORD_QUALITIES:
        for root in range(12):
            t = np.zeros(12)
            t[list(theory.chord_pitch_classes(root, quality))] = 1.0 / np.sqrt(3)
            out.append((quality, root, t))
    return out


def test_chord_quality_by_template(folder: Path) -> None:
    ds = generate_dataset("chords", folder, limit_per_class=16, seed=7)
    clips = _clips(ds.filter(concept="chords"))
    assert len(clips) >= 60
    templates = _templates()
    quality_hits, tone_share = [], []
    for row, audio in clips:
        profile = _chroma(audio, 36)
        best = max(templates, key=lambda t: float(profile @ t[2]))
        quality_hits.append(best[0] == row["label"])
        pcs = list(theory.chord_pitch_classes(int(row["root_pitch_class"]), row["label"]))
        tone_share.append(float(profile[pcs].sum()))
    assert np.mean(quality_hits) >= 0.9, f"{np.mean(quality_hits):.1%} match their quality"
    # the three labelled pitch classes carry most of the chroma energy
    assert np.median(tone_share) > 0.5


def test_interval_notes_by_chroma(folder: Path) -> None:
    ds = generate_dataset("intervals", folder, limit_per_class=3, seed=7)
    clips = _clips(ds.filter(concept="intervals"))
    assert len(clips) >= 33
    hits = []
    for row, audio in clips:
        profile = _chroma(audio, 36)
        root, semis = int(row["root_pitch_class"]), int(row["semitones"])
        if semis == 12:
            hits.append(int(np.argmax(profile)) == root)
        else:
            top_two = set(np.argsort(profile)[-2:].tolist())
            hits.append(top_two == {root, (root + semis) % 12})
    assert np.mean(hits) >= 0.9, f"{np.mean(hits):.1%} of interval clips show their two notes"


def test_click_tempo_by_beat_tracking(folder: Path) -> None:
    bpms = [str(b) for b in range(52, 211, 6)]  # 27 tempos across the range
    ds = generate_dataset({"tempos": bpms}, folder, limit_per_class=1, seed=7)
    clips = _clips(ds.filter(concept="tempos"))
    assert len(clips) == len(bpms)
    assert len({row["click"] for row, _ in clips}) >= 4  # several click sounds
    hits = []
    for row, audio in clips:
        tempo, _ = librosa.beat.beat_track(y=audio, sr=SR)
        tempo = float(np.atleast_1d(tempo)[0])
        bpm = float(row["bpm"])
        hits.append(any(abs(tempo * k - bpm) <= 0.05 * bpm for k in (0.5, 1.0, 2.0)))
    assert np.mean(hits) >= 0.9, f"{np.mean(hits):.1%} of click tracks match their tempo"
