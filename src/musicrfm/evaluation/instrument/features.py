"""The timbre statistics the instrument classifier reads (:data:`FEATURE_NAMES`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from musicrfm.evaluation.frontend import SAMPLE_RATE, prepare_audio

N_MFCC = 20
FEATURE_NAMES: tuple[str, ...] = (
    *(f"mfcc{i}_mean" for i in range(N_MFCC)),
    *(f"mfcc{i}_std" for i in range(N_MFCC)),
    *(f"dmfcc{i}_mean" for i in range(N_MFCC)),
    *(f"dmfcc{i}_std" for i in range(N_MFCC)),
    "centroid_mean",
    "centroid_std",
    "bandwidth_mean",
    "bandwidth_std",
    "rolloff_mean",
    "rolloff_std",
    "flatness_mean",
    "flatness_std",
    *(f"contrast{i}_mean" for i in range(7)),
    "zcr_mean",
    "zcr_std",
)


def instrument_features(audio: Any, sr: int) -> np.ndarray:
    """The timbre statistics of one clip, in :data:`FEATURE_NAMES` order (float64)."""
    import librosa

    y = prepare_audio(audio, sr)
    s = SAMPLE_RATE
    mfcc = librosa.feature.mfcc(y=y, sr=s, n_mfcc=N_MFCC)
    frames = mfcc.shape[1]
    width = min(9, frames if frames % 2 else frames - 1)
    delta = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    stft = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    centroid = librosa.feature.spectral_centroid(S=stft, sr=s)[0]
    bandwidth = librosa.feature.spectral_bandwidth(S=stft, sr=s)[0]
    rolloff = librosa.feature.spectral_rolloff(S=stft, sr=s)[0]
    flatness = librosa.feature.spectral_flatness(S=stft)[0]
    contrast = librosa.feature.spectral_contrast(S=stft, sr=s)
    zcr = librosa.feature.zero_crossing_rate(y)[0]
    # frequencies in kHz keep the features on comparable scales before standardisation
    return np.concatenate(
        [
            mfcc.mean(1),
            mfcc.std(1),
            delta.mean(1),
            delta.std(1),
            [centroid.mean() / 1e3, centroid.std() / 1e3],
            [bandwidth.mean() / 1e3, bandwidth.std() / 1e3],
            [rolloff.mean() / 1e3, rolloff.std() / 1e3],
            [flatness.mean(), flatness.std()],
            contrast.mean(1),
            [zcr.mean(), zcr.std()],
        ]
    ).astype(np.float64)
