"""Prompt adherence: the GM family a prompt names against the classifier's answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from musicrfm.errors import ConfigError
from musicrfm.evaluation.instrument.classifier import InstrumentClassifier

# words in a text prompt -> GM family (musicrfm.theory.GM_FAMILIES names)
PROMPT_WORDS: dict[str, tuple[str, ...]] = {
    "piano": ("piano", "keyboard", "harpsichord", "clavinet", "clavi"),
    "chromatic_percussion": (
        "vibraphone",
        "marimba",
        "xylophone",
        "glockenspiel",
        "celesta",
        "music box",
        "dulcimer",
        "bells",
    ),
    "organ": ("organ", "accordion", "harmonica", "bandoneon"),
    "guitar": ("guitar",),
    "bass": ("bass",),
    "strings": ("violin", "viola", "cello", "contrabass", "harp", "timpani"),
    "ensemble": ("strings", "string ensemble", "choir", "voices", "orchestra"),
    "brass": ("trumpet", "trombone", "tuba", "horn", "brass"),
    "reed": ("saxophone", "sax", "oboe", "clarinet", "bassoon", "english horn"),
    "pipe": ("flute", "piccolo", "recorder", "pan flute", "ocarina", "whistle", "shakuhachi"),
    "synth_lead": ("synth lead", "lead synth", "square lead", "saw lead"),
    "synth_pad": ("pad", "synth pad"),
    "ethnic": ("sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai"),
}


def instrument_from_prompt(prompt: str) -> str | None:
    """The GM family a text prompt names ("a calm solo cello" -> "strings"), or None.

    Longer phrases win over single words ("bass guitar" -> "bass", "string ensemble" ->
    "ensemble"); the first family found in the prompt otherwise.
    """
    text = f" {re.sub(r'[^a-z ]+', ' ', prompt.lower())} "
    best: tuple[int, int, str] | None = None
    for family, words in PROMPT_WORDS.items():
        for word in words:
            pos = text.find(f" {word} ")
            if pos < 0 and not word.endswith("s"):
                pos = text.find(f" {word}s ")
            if pos >= 0:
                key = (-len(word), pos, family)
                if best is None or key < best:
                    best = key
    if best is None:
        return None
    if best[2] == "guitar" and " bass guitar " in text:
        return "bass"
    return best[2]


def prompt_adherence(
    classifier: InstrumentClassifier, audios: Sequence[Any], sr: int, prompts: Sequence[str] | str
) -> pd.DataFrame:
    """Per clip: the family the prompt names, the classifier's label and whether they agree.

    Clips whose prompt names no known instrument get a missing ``expected`` and ``match=NaN``.
    Needs a classifier trained on ``instrument_family``.
    """
    if classifier.label_column != "instrument_family":
        raise ConfigError(
            f"prompt adherence compares GM families; this classifier predicts {classifier.label_column!r}"
        )
    if isinstance(prompts, str):
        prompts = [prompts] * len(audios)
    if len(prompts) != len(audios):
        raise ConfigError(f"{len(audios)} clips but {len(prompts)} prompts")
    rows = []
    for audio, prompt in zip(audios, prompts):
        d = classifier.classify(audio, sr)
        expected = instrument_from_prompt(prompt)
        rows.append(
            {
                "prompt": prompt,
                "expected": expected,
                "predicted": d.label,
                "confidence": d.confidence,
                "match": np.nan if expected is None else float(d.label == expected),
            }
        )
    return pd.DataFrame(rows)
