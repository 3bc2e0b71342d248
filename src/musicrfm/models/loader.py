"""One loader for every model MusicRFM can steer, and the table of names it accepts.

Sources a model can come from (:func:`load_model`):

- a Hugging Face hub id (``facebook/musicgen-small``, ``-medium``, ``-large``, ``-melody``,
  fine-tunes), from the network or the local hub cache; the short names in `HUB_NAMES`
  (``musicgen-small``...) stand for them;
- a local folder written by ``save_pretrained``;
- ``mini-poly`` / ``musicgen-mini-poly``: the second bundled model, the polyphonic testbed;
- ``mini-beat`` / ``musicgen-mini-beat``: the third, the testbed retrained with an onset
  codebook so that it plays a beat (session 14);
- one of `BUNDLED_NAMES` (``mini``, ``musicgen-mini``, ``default``) or None: the bundled small
  MusicGen-architecture model (``musicgen-mini`` is also the ``model_id`` its clips record, so
  a clip's sidecar names a model this loader finds again);
- ``"random:<size>[:seed<N>]"``: a config-built MusicGen with seeded random weights
  (:func:`random_model`), for offline tests and benchmarks;
- an adapter already loaded, returned as it is (so every function that takes "a model" hands
  whatever it was given to this loader).

It is the only loader: commands, the demo, the headline and the mini model's gates all call it.

Weights load from safetensors only: a folder (or hub repo) that has only pickle weights
(``pytorch_model.bin``) is refused with a line saying how to convert it, because unpickling runs
code from the file; ``allow_pickle=True`` or ``MUSICRFM_ALLOW_PICKLE=1`` opts in. A device is
checked (`check_device`) before anything loads, and the tokenizer before the weights: a
checkpoint without a usable one (`tokenizer_problem`) is one ModelError line.

The adapter's ``revision`` is the hub snapshot commit (from transformers, else from the local
cache layout, `musicrfm.models.hub`), so offline loads record it as online ones do; a local
folder records None (its weights ``fingerprint`` identifies it; hashing every byte of a
multi-GB folder on each load would cost more than the load), or the commit when the folder is
a hub cache snapshot.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from musicrfm.errors import ConfigError, ModelError
from musicrfm.models.adapter import ModelAdapter, resolve_device, resolve_dtype
from musicrfm.models.codecs import register_codecs
from musicrfm.models.hub import resolve_commit, snapshot_commit
from musicrfm.models.musicgen import MusicGenAdapter

log = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "musicgen-mini"
BUNDLED_NAMES = ("mini", BUNDLED_MODEL_NAME, "default")
POLY_MODEL_NAME = "musicgen-mini-poly"
"""The second bundled model: the polyphonic testbed (notes, intervals, triads at 60-180 BPM)."""
POLY_NAMES = ("mini-poly", POLY_MODEL_NAME)
BEAT_MODEL_NAME = "musicgen-mini-beat"
"""The third bundled model: the strike testbed with an onset codebook (it plays a beat)."""
BEAT_NAMES = ("mini-beat", BEAT_MODEL_NAME)
HUB_NAMES = {
    f"musicgen-{size}": f"facebook/musicgen-{size}"
    for size in ("small", "medium", "large", "melody", "melody-large", "stereo-small")
}
_RANDOM_RE = re.compile(r"^random:(?P<size>[a-z0-9_-]+)(?::seed(?P<seed>\d+))?$")
PICKLE_ENV = "MUSICRFM_ALLOW_PICKLE"
DEVICES = "cpu, cuda, cuda:N or mps"


def check_device(device: str | torch.device) -> torch.device:
    """The device, checked to exist here; anything else (``tpu``, ``cuda:x``, ``cuda`` without a
    GPU, ``cuda:3`` on a one-GPU machine) is one ModelError line, the same in every verb."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelError(f"unknown device {str(device)!r}; use {DEVICES}") from None
    dev = resolve_device(str(dev))
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ModelError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
            f"device(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})"
        )
    return dev


def pickle_allowed(allow: bool | None = None) -> bool:
    """Whether pickle weights may be loaded: ``allow``, else ``$MUSICRFM_ALLOW_PICKLE``."""
    if allow is not None:
        return bool(allow)
    return os.environ.get(PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def _quiet_transformers(*, warnings: bool, progress: bool) -> Iterator[None]:
    """transformers' config warnings off (``warnings=False``) and its weight-loading progress
    bar off (``progress=False``) while a model loads; both restored afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    if not warnings:
        hf_logging.set_verbosity_error()
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def resolve_name(name_or_path: str | None) -> str:
    """The canonical form of a model name: ``"mini"`` for every bundled name, a hub id for a
    short hub name, anything else unchanged."""
    name = "" if name_or_path is None else str(name_or_path).strip()
    if name in ("", *BUNDLED_NAMES):
        return "mini"
    if name in POLY_NAMES:
        return "mini-poly"
    if name in BEAT_NAMES:
        return "mini-beat"
    return HUB_NAMES.get(name, name)


def bundled_model_dirs(folder: str = BUNDLED_MODEL_NAME) -> list[Path]:
    """Where a bundled model may live (for the default one, the env override first)."""
    dirs = []
    env = os.environ.get("MUSICRFM_MINI_MODEL")
    if env and folder == BUNDLED_MODEL_NAME:
        dirs.append(Path(env))
    here = Path(__file__).resolve()
    dirs.append(here.parents[1] / "data" / folder)  # inside an installed package
    dirs.append(here.parents[3] / "models" / folder)  # repository checkout
    return dirs


def _model_class(model_type: str | None, where: str) -> type:
    from transformers import (
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    if model_type == "musicgen":
        return MusicgenForConditionalGeneration
    if model_type == "musicgen_melody":
        return MusicgenMelodyForConditionalGeneration
    if model_type in ("musicgen_decoder", "musicgen_melody_decoder"):
        raise ModelError(
            f"{where} is a decoder-only MusicGen checkpoint (no codec, no text encoder); "
            "load the full text-to-music model"
        )
    raise ModelError(f"{where} is not a MusicGen model (model_type={model_type!r})")


# prompts a usable tokenizer must tell apart (distinct words, not all <unk>)
TOKENIZER_PROBES = ("acoustic piano", "electric guitar", "string ensemble, low register", "drums")
MIN_VOCAB = 32  # fewer non-special tokens than this is no vocabulary at all


def tokenizer_problem(tokenizer: Any, text_vocab_size: int | None = None) -> str | None:
    """Why ``tokenizer`` cannot turn prompts into text-encoder input, or None when it can.

    Refused: a tokenizer that fails on a prompt, has almost no vocabulary beyond its special
    tokens (transformers builds a 104-token T5 tokenizer for a folder without tokenizer files),
    maps distinct prompts to identical ids or most words to ``<unk>``, or makes ids the text
    encoder has no embedding for."""
    try:
        ids = [[int(i) for i in tokenizer(p)["input_ids"]] for p in TOKENIZER_PROBES]
    except Exception as exc:  # noqa: BLE001 - any failure means it is unusable
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"it fails on the prompt {TOKENIZER_PROBES[0]!r} ({type(exc).__name__}: {first})"
    special = {int(i) for i in getattr(tokenizer, "all_special_ids", []) or []}
    unk = getattr(tokenizer, "unk_token_id", None)
    try:
        size = len(tokenizer)
    except TypeError:
        size = None
    if size is not None and size - len(special) < MIN_VOCAB:
        return f"its vocabulary has {size} tokens, {len(special)} of them special"
    if len({tuple(x) for x in ids}) < len(ids):
        same = [p for p, x in zip(TOKENIZER_PROBES, ids) if ids.count(x) > 1]
        return f"distinct prompts get identical token ids ({' / '.join(map(repr, same))})"
    words = [i for seq in ids for i in seq if i not in special or i == unk]
    if unk is not None and words and sum(i == unk for i in words) * 2 >= len(words):
        return f"most words map to the unknown token {tokenizer.unk_token!r}"
    top = max(max(x) for x in ids if x) if any(ids) else -1
    if text_vocab_size and top >= int(text_vocab_size):
        return (
            f"it makes token id {top}, but the text encoder has {int(text_vocab_size)} embeddings"
        )
    return None


def _text_config(config: Any) -> dict[str, Any]:
    """The text encoder's sub-config as a dict (from a config object or ``config.json``)."""
    text = config.get("text_encoder", {}) if isinstance(config, dict) else config.text_encoder
    return text if isinstance(text, dict) else text.to_dict()


def _load_tokenizer(
    source: str, revision: str | None, text_cfg: dict[str, Any], *, required: bool = True
) -> tuple[Any, str | None]:
    """(tokenizer, None), or when none is usable a one-line ModelError (``required``) or
    (None, why). Checked with :func:`tokenizer_problem` before any weights load."""
    from transformers import AutoTokenizer, ByT5Tokenizer

    vocab = text_cfg.get("vocab_size")
    tok: Any = None
    try:
        tok = AutoTokenizer.from_pretrained(source, revision=revision)
        problem = tokenizer_problem(tok, vocab)
    except Exception as exc:  # noqa: BLE001 - any failure is reported below
        problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if problem and text_cfg.get("model_type") == "t5" and vocab == 384:
        tok, problem = ByT5Tokenizer(), None  # a ByT5-shaped text encoder: bytes need no files
    if problem is None:
        return tok, None
    name = text_cfg.get("_name_or_path") or "t5-base"
    message = (
        f"{source} has no usable tokenizer ({problem}); save its text encoder's tokenizer next "
        f"to the model (AutoTokenizer.from_pretrained({name!r}).save_pretrained(FOLDER)), or pass "
        "require_tokenizer=False to load it for unconditional use only (prompt=None)"
    )
    if required:
        raise ModelError(message)
    log.warning("%s", message)
    return None, problem


def load_model(
    name_or_path: str | os.PathLike[str] | ModelAdapter | None = "mini",
    *,
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    revision: str | None = None,
    progress: bool = True,
    allow_pickle: bool | None = None,
    require_tokenizer: bool = True,
) -> MusicGenAdapter:
    """Load a MusicGen or MusicGen-Melody text-to-music model.

    Parameters
    ----------
    name_or_path:
        a hub id (``facebook/musicgen-small``) or short hub name (``musicgen-small``), a local
        folder, ``"mini"``/``"musicgen-mini"``/``"default"``/None for the bundled model, or
        ``"random:<size>[:seed<N>]"`` (see :func:`random_model`). An adapter that is already
        loaded is returned as it is (``device``, ``dtype`` and ``revision`` are then ignored),
        so functions taking "a model" can hand whatever they were given to this loader.
    device, dtype:
        ``cpu``/``cuda``/``mps``; ``float32``/``float16``/``bfloat16``.
    revision:
        hub revision (branch, tag or commit). The adapter's ``revision`` (what features,
        directions and sidecars record) is the snapshot commit hash: transformers' for an
        online load, else read from the local cache layout (``HF_HUB_OFFLINE=1``); for a local
        folder it is the commit when the folder is a hub cache snapshot, else None (the weights
        ``fingerprint``, recorded beside it, identifies a local folder's weights).
    progress:
        show transformers' weight-loading progress bar.
    allow_pickle:
        load pickle weights (``pytorch_model.bin``) when there are no safetensors; default
        ``$MUSICRFM_ALLOW_PICKLE``. Unpickling runs code from the file: only for files you trust.
    require_tokenizer:
        refuse (one ModelError line, before any weights load) a checkpoint without a usable
        tokenizer (`tokenizer_problem`); False loads it with no tokenizer, for prompt=None.
    """
    if name_or_path is not None and not isinstance(name_or_path, (str, os.PathLike)):
        if isinstance(name_or_path, ModelAdapter):
            return name_or_path  # type: ignore[return-value]
        raise ConfigError(
            f"cannot load a model from a {type(name_or_path).__name__}; pass a name, a folder "
            "or a loaded adapter"
        )
    torch_dtype = resolve_dtype(dtype)
    dev = check_device(device)
    name = resolve_name(name_or_path)
    m = _RANDOM_RE.match(name)
    if m:
        return random_model(
            m.group("size"), seed=int(m.group("seed") or 0), device=device, dtype=dtype
        )
    if name.startswith("random:"):
        raise ConfigError(f"bad random model spec {name!r}; use random:<tiny|small>[:seed<N>]")
    register_codecs()
    pickle_ok = pickle_allowed(allow_pickle)
    bundled = {"mini": BUNDLED_MODEL_NAME, "mini-poly": POLY_MODEL_NAME,
               "mini-beat": BEAT_MODEL_NAME}.get(name)  # fmt: skip
    path = _bundled_folder(bundled) if bundled else Path(name).expanduser()
    if not bundled and path.is_dir():
        bundled = _bundled_name_of(path)
    if path.is_dir():
        source = "bundled" if bundled else "local"
        # the bundled models' configs carry token ids transformers warns about; nothing to fix
        with _quiet_transformers(warnings=not bundled, progress=progress):
            model, tok, tok_err = _load_folder(path, torch_dtype, pickle_ok, require_tokenizer)
        model_id = bundled or str(path.resolve())
        local_path: Path | None = path.resolve()
        commit = snapshot_commit(local_path)
    else:
        if name.startswith((".", "/", "~")) or name.count("/") > 1 or path.exists():
            raise ModelError(f"no model folder at {name}")
        model_id, source, local_path = name, "hub", None
        with _quiet_transformers(warnings=True, progress=progress):
            model, tok, tok_err = _load_from_hub(
                name, revision, torch_dtype, pickle_ok, require_tokenizer
            )
        commit = getattr(model.config, "_commit_hash", None) or resolve_commit(name, revision)
    model = model.to(dev).eval()
    revision = commit or revision
    adapter = MusicGenAdapter(
        model,
        model_id=model_id,
        revision=revision,
        tokenizer=tok,
        tokenizer_error=tok_err,
        source=source,
        local_path=local_path,
    )
    log.info("loaded %r", adapter)
    return adapter


_TESTBED_RECIPES = {
    POLY_MODEL_NAME: "--data strikes --codec polyphonic --codec-fit-clips 1500 --steps 3000` "
    "(about 1.5 h on 2 CPU cores)",
    BEAT_MODEL_NAME: "--data strikes --codec polyphonic_onsets --codec-fit-clips 1500 --steps "
    "2500` (about 1.2 h on 2 CPU cores)",
}
"""How to train each bundled testbed when its folder is missing (the rest of the command)."""


def _bundled_name_of(path: Path) -> str | None:
    """The bundled model's name when ``path`` is its folder (``models/musicgen-mini-beat`` is
    ``mini-beat``), so that directions and sidecars made from one spelling fit the other, in
    any checkout; else None."""
    here = path.resolve()
    for folder in (BUNDLED_MODEL_NAME, POLY_MODEL_NAME, BEAT_MODEL_NAME):
        if any(d.resolve() == here for d in bundled_model_dirs(folder)):
            return folder
    return None


def _bundled_folder(folder: str = BUNDLED_MODEL_NAME) -> Path:
    """The first folder of :func:`bundled_model_dirs` holding a bundled model, or a ModelError
    that says how to get one."""
    dirs = bundled_model_dirs(folder)
    for d in dirs:
        if (d / "config.json").is_file():
            return d
    recipe = _TESTBED_RECIPES.get(folder)
    if recipe is not None:
        raise ModelError(
            f"the bundled model {folder} is not available (looked in "
            + ", ".join(str(d) for d in dirs)
            + f"). Train it with `musicrfm mini train --out models/{folder} {recipe}"
        )
    raise ModelError(
        "the bundled model musicgen-mini is not available (looked in "
        + ", ".join(str(d) for d in dirs)
        + "). Train it once with `musicrfm mini train --out models/musicgen-mini` (about 1-2 h "
        "on 2 CPU cores), set MUSICRFM_MINI_MODEL to a trained copy, or use another model "
        "(--model): a hub id such as facebook/musicgen-small, a local folder written by "
        "save_pretrained, or random:tiny"
    )


def pickle_refusal(where: str, names: list[str]) -> ModelError:
    """The error for pickle-only weights: why, how to convert, how to opt in."""
    return ModelError(
        f"{where} has only pickle weights ({', '.join(names)}), and loading pickle runs code "
        'from the file. Convert them once, on a machine you trust: python -c "from transformers '
        "import MusicgenForConditionalGeneration as M; M.from_pretrained('SRC', "
        "use_safetensors=False).save_pretrained('DST')\" (writes model.safetensors), or opt in "
        f"with {PICKLE_ENV}=1"
    )


def _load_folder(
    path: Path, torch_dtype: torch.dtype, allow_pickle: bool = False, require_tokenizer: bool = True
) -> tuple:
    """(model, tokenizer, tokenizer error) from a folder written by ``save_pretrained``; the
    tokenizer is checked before the weights load."""
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelError(f"{path} has no config.json; is it a folder written by save_pretrained?")
    try:
        config = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{cfg_file} is not valid JSON: {exc}") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    cls = _model_class(model_type, str(path))
    safe = list(path.glob("*.safetensors")) + list(path.glob("*.safetensors.index.json"))
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
    if not safe and pickles and not allow_pickle:
        raise pickle_refusal(str(path), pickles)
    tok, tok_err = _load_tokenizer(
        str(path), None, _text_config(config), required=require_tokenizer
    )
    try:
        model = cls.from_pretrained(
            str(path), dtype=torch_dtype, use_safetensors=None if allow_pickle else True
        )
    except (
        OSError, ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError,
        SafetensorError,
    ) as exc:  # fmt: skip
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load the model in {path}: {text}") from None
    return model, tok, tok_err


def _load_from_hub(
    name: str,
    revision: str | None,
    torch_dtype: torch.dtype,
    allow_pickle: bool = False,
    require_tokenizer: bool = True,
) -> tuple:
    from transformers import AutoConfig

    hint = (
        f"cannot load {name!r} from the Hugging Face hub (no network, or not in the local cache"
        f"{', HF_HUB_OFFLINE is set' if os.environ.get('HF_HUB_OFFLINE') else ''}). Either pass a "
        "local folder written by save_pretrained (e.g. --model /path/to/musicgen-small), or "
        "populate the cache on a machine with network (`huggingface-cli download "
        f"{name}` / from_pretrained) and copy ~/.cache/huggingface here"
    )
    try:
        config = AutoConfig.from_pretrained(name, revision=revision)
    except (OSError, ValueError) as exc:
        text = str(exc)
        if "does not appear to have" in text or "Unrecognized model" in text:
            raise ModelError(f"{name!r} is not a MusicGen model: {text.splitlines()[0]}") from None
        raise ModelError(
            f"{hint}. ({type(exc).__name__}: {text.splitlines()[0] if text else ''})"
        ) from None
    cls = _model_class(getattr(config, "model_type", None), name)
    tok, tok_err = _load_tokenizer(name, revision, _text_config(config), required=require_tokenizer)
    try:
        model = cls.from_pretrained(
            name,
            revision=revision,
            dtype=torch_dtype,
            use_safetensors=None if allow_pickle else True,
        )
    except (OSError, ValueError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        if "does not appear to have" in text and "safetensors" in text and not allow_pickle:
            raise pickle_refusal(repr(name), ["no model.safetensors"]) from None
        raise ModelError(f"{hint}. ({type(exc).__name__}: {text})") from None
    return model, tok, tok_err


# --------------------------------------------------------------------------- random models
def random_model(
    size: str = "tiny",
    *,
    seed: int = 0,
    device: str = "cpu",
    dtype: str | torch.dtype = "float32",
    melody: bool = False,
    num_layers: int | None = None,
) -> MusicGenAdapter:
    """A MusicGen built from a config with seeded random weights (no downloads).

    size: ``"tiny"`` (4 blocks, hidden 64, tiny EnCodec and T5; builds in well under a second)
    or ``"small"`` (musicgen-small's decoder shapes: 24 blocks, hidden 1024, 16 heads, 4 x 2048
    codebooks, and its 32 kHz EnCodec's shapes). ``"tiny-melody"`` / ``"small-melody"`` or
    ``melody=True`` build the MusicGen-Melody class. ``num_layers`` overrides the number of
    decoder blocks (reduced benchmarks). The tokenizer is byte-level (ByT5) and needs no files.
    The same seed gives the same weights; the global RNG is left untouched.
    """
    from musicrfm.models.random import build_random_model  # noqa: I001

    return build_random_model(
        size, seed=seed, device=device, dtype=dtype, melody=melody, num_layers=num_layers
    )
