"""The synthetic music-theory dataset (a SynTheory equivalent rendered locally).

>>> from musicrfm.synth import generate_dataset, load_dataset
>>> ds = generate_dataset("notes", "data/notes", programs=[0, 24], octaves=[3, 4, 5])
>>> ds.rows[["path", "label", "octave", "program_name", "instrument_family"]].head()
>>> train = ds.split(seed=0).subset("train")

See :mod:`musicrfm.synth.concepts` for the seven concepts and their labels,
:mod:`musicrfm.synth.render` for rendering, :mod:`musicrfm.synth.dataset` for the on-disk format
and :mod:`musicrfm.synth.hub` for loading the original SynTheory from the Hugging Face hub.
"""

from __future__ import annotations

from musicrfm.synth.concepts import CLICK_SOUNDS, CONCEPTS, ClipSpec, Concept, Note, get_concept
from musicrfm.synth.dataset import SynthDataset, load_dataset
from musicrfm.synth.generate import generate_dataset
from musicrfm.synth.hub import load_syntheory
from musicrfm.synth.render import Renderer, RenderOptions, add_reverb, find_soundfont, is_silent

__all__ = [
    "CLICK_SOUNDS",
    "CONCEPTS",
    "ClipSpec",
    "Concept",
    "Note",
    "RenderOptions",
    "Renderer",
    "SynthDataset",
    "add_reverb",
    "find_soundfont",
    "generate_dataset",
    "get_concept",
    "is_silent",
    "load_dataset",
    "load_syntheory",
]
