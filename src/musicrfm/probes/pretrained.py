"""Direction bundles: `ConceptDirections` in a folder or hub repo, with a model card.

A bundle is a folder (or a hub model repo holding the same files)::

    directions.safetensors   vectors, scores, eigenvalues (`ConceptDirections.save`)
    directions.json          concept, classes, layers, meta (model, revision, training)
    README.md                the model card (`model_card`): model, concept, classes, per-layer
                             scores, how to use

`save_pretrained` writes one, `resolve_bundle` finds one in a folder or, for a hub id, through
``huggingface_hub.snapshot_download`` (which, with ``HF_HUB_OFFLINE=1``, resolves it from the
local cache only), and `push_to_hub` uploads one. Used as ``ConceptDirections.save_pretrained`` /
``.from_pretrained`` / ``.push_to_hub``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from musicrfm.errors import ConfigError
from musicrfm.files import write_text_atomic


class Directions(Protocol):
    """What a bundle needs of `ConceptDirections` (named here without importing it: the
    directions module imports this one)."""

    concept: str
    classes: list[str]
    layers: list[int]
    scores: Any
    meta: dict[str, Any]

    @property
    def is_regression(self) -> bool: ...
    @property
    def hidden_size(self) -> int: ...
    @property
    def num_components(self) -> int: ...
    def activation_norm(self) -> float | None: ...
    def save(self, path: str | Path) -> Path: ...


BUNDLE_NAME = "directions"
CARD_NAME = "README.md"
BUNDLE_FILES = (f"{BUNDLE_NAME}.safetensors", f"{BUNDLE_NAME}.json", CARD_NAME)
MAX_CLASS_COLUMNS = 12  # per-class score columns in the card's table (more: summary only)


def save_pretrained(
    cd: Directions, folder: str | os.PathLike[str], *, repo_id: str | None = None
) -> Path:
    """Write ``cd`` as a bundle in ``folder`` (created): the two direction files and README.md
    (whose usage lines name ``repo_id`` when given)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cd.save(folder / BUNDLE_NAME)
    write_text_atomic(folder / CARD_NAME, model_card(cd, repo_id))
    return folder


def _is_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~", "/"))


def resolve_bundle(
    repo_id_or_dir: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> tuple[Path, dict[str, Any]]:
    """(what `ConceptDirections.load` reads, where it came from) for a bundle folder, a file
    base written by ``save``, or a hub repo id (downloaded into, or with ``HF_HUB_OFFLINE=1``
    found in, the hub cache; the origin records its repo id and snapshot commit)."""
    from musicrfm.models.hub import snapshot_commit

    path = Path(repo_id_or_dir).expanduser()
    local_file = path.is_file() or Path(f"{path}.json").is_file()  # a `save` file base
    if path.is_dir() or local_file:
        folder, origin = path, {"path": str(path.resolve())}
    elif _is_hub_id(str(repo_id_or_dir)):
        folder = _download(str(repo_id_or_dir), revision, cache_dir, token)
        origin = {"repo_id": str(repo_id_or_dir), "revision": snapshot_commit(folder) or revision}
    else:
        raise ConfigError(
            f"no direction bundle at {repo_id_or_dir}: pass a folder written by save_pretrained "
            "or a hub repo id (owner/name)"
        )
    base = folder / BUNDLE_NAME
    return (base if base.with_suffix(".json").is_file() else folder), origin


def _download(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    token: str | bool | None,
) -> Path:
    """The bundle's snapshot folder from the hub cache (downloading it when online)."""
    from huggingface_hub import constants, snapshot_download

    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, token=token,
            allow_patterns=list(BUNDLE_FILES), library_name="musicrfm",
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - hub errors have many types; one line for all
        offline = ", HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else ""
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(
            f"cannot get the direction bundle {repo_id!r} from the Hugging Face hub (no network, "
            f"or not in the local cache{offline}): download it where there is network (`hf "
            f"download {repo_id}`) and copy the hub cache here, or pass the bundle's folder "
            f"({type(exc).__name__}: {first})"
        ) from None
    folder = Path(folder)
    if not (folder / f"{BUNDLE_NAME}.json").is_file():
        raise ConfigError(
            f"{repo_id!r} holds no direction bundle ({BUNDLE_NAME}.safetensors + "
            f"{BUNDLE_NAME}.json, as ConceptDirections.save_pretrained writes)"
        )
    return folder


def push_to_hub(
    cd: Directions,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload ``cd`` as a bundle to the hub repo ``repo_id`` (created if missing); returns the
    commit URL. Needs network and a token (``hf auth login``)."""
    from huggingface_hub import HfApi, constants

    if not _is_hub_id(repo_id):
        raise ConfigError(f"{repo_id!r} is not a hub repo id (owner/name)")
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(
            f"HF_HUB_OFFLINE is set: cannot push to {repo_id!r}; unset it, or save_pretrained a "
            "folder now and upload it later (`hf upload`)"
        )
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(cd, tmp, repo_id=repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=tmp, revision=revision,
            commit_message=commit_message or f"MusicRFM {cd.concept} directions",
        )  # fmt: skip
    return str(getattr(info, "commit_url", info))


# --------------------------------------------------------------------------- the model card
def model_card(cd: Directions, repo_id: str | None = None) -> str:
    """The bundle's README.md: hub metadata, what the directions are, per-layer scores, use."""
    m = cd.meta
    model_id = str(m.get("model_id") or "unknown")
    revision = m.get("model_revision")
    score_name = str(m.get("score_name") or "score")
    hub_model = _is_hub_id(model_id)
    target = "faster" if cd.is_regression else cd.classes[0]
    toward = f"higher or lower {cd.concept}" if cd.is_regression else f"its {cd.concept} classes"
    front = ["---", "library_name: musicrfm", "tags:"]
    front += [f"- {t}" for t in ("musicrfm", "musicgen", "steering", "rfm", cd.concept)]
    if hub_model:
        front.append(f"base_model: {model_id}")
    front.append("---")
    n_model = m.get("num_layers")
    layers = _ranges(cd.layers) + (f" ({len(cd.layers)} of {n_model} blocks)" if n_model else "")
    rows = [
        ("model", f"`{model_id}`"),
        ("model revision", f"`{revision}`" if revision else "not recorded (a local folder)"),
        ("concept", f"`{cd.concept}`" + (" (regression)" if cd.is_regression else "")),
        ("classes", ", ".join(f"`{c}`" for c in cd.classes) + f" ({len(cd.classes)})"),
        ("layers", layers + "; layer i is added to the output of decoder block i"),
        ("components per class", str(cd.num_components)),
        ("hidden size", str(cd.hidden_size)),
        ("score", f"{score_name} on held-out clips (higher is better)"),
    ]
    for key, label in (("pooling", "pooling"), ("prompt", "capture prompt")):
        if key in m:
            rows.append((label, f"`{m[key]!r}`" if key == "prompt" else f"`{m[key]}`"))
    norm = cd.activation_norm()
    if norm is not None:
        rows.append(("activation norm", f"{norm:.4g} (median; a relative η0 `0.1x` = 0.1 × it)"))
    if m.get("library_version"):
        rows.append(("musicrfm", str(m["library_version"])))
    lines = [
        *front,
        "",
        f"# MusicRFM concept directions: {cd.concept}",
        "",
        f"Recursive Feature Machine (RFM) directions for steering `{model_id}` toward {toward}, "
        "trained with MusicRFM on the model's per-layer activations. "
        "Each class has unit vectors per decoder layer; adding one to a block's output during "
        "generation pushes the music toward that class.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        "## Per-layer scores",
        "",
        *_score_table(cd, score_name),
        "",
        "## How to use",
        "",
        "```python",
        "from musicrfm import ConceptDirections, load_model",
        "from musicrfm.steering import SteeringDirection, generate",
        "",
        f'model = load_model("{model_id if hub_model else "<the model folder>"}")',
        f'directions = ConceptDirections.from_pretrained("{repo_id or "<this repo or folder>"}", '
        "model=model)  # checks it fits the model",
        f'steer = SteeringDirection(directions, target="{target}", coef="0.1x")',
        'clips = generate(model, "acoustic piano", plan=steer, seconds=5)',
        "```",
        "",
        "From the command line, name the bundle with `hf:` (read through the hub cache), or "
        "download it and name its folder:",
        "",
        "```bash",
        f'musicrfm generate "acoustic piano" --model '
        f"{model_id if hub_model else '<the model folder>'} "
        f"--directions hf:{repo_id or '<this repo>'} --target {target} --coef 0.1x",
        f"hf download {repo_id or '<this repo>'} --local-dir {cd.concept}-directions",
        f"musicrfm generate --model {model_id if hub_model else '<the model folder>'} "
        f'--directions {cd.concept}-directions --target {target} --coef 0.1x "acoustic piano"',
        "```",
        "",
        "Loading checks the directions against the model (model id, hidden size, layers); "
        "they are meaningful only for the model (and revision) they were trained on.",
        "",
    ]
    return "\n".join(lines)


def _score_table(cd: Directions, score_name: str) -> list[str]:
    """One row per layer: mean, min and max over classes, the best class, and (up to
    `MAX_CLASS_COLUMNS` classes) each class's score."""
    per_class = len(cd.classes) <= MAX_CLASS_COLUMNS
    head = ["layer", f"mean {score_name}", "min", "max", "best class"]
    head += list(cd.classes) if per_class else []
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    scores = cd.scores.float()
    for i, layer in enumerate(cd.layers):
        row = scores[i]
        cells = [str(layer), f"{row.mean():.3f}", f"{row.min():.3f}", f"{row.max():.3f}"]
        cells.append(f"`{cd.classes[int(row.argmax())]}`")
        cells += [f"{float(v):.3f}" for v in row] if per_class else []
        out.append("| " + " | ".join(cells) + " |")
    best = int(scores.mean(dim=1).argmax())
    out += ["", f"Best layer by mean {score_name}: {cd.layers[best]}."]
    return out


def _ranges(layers: list[int]) -> str:
    """``0-3, 5, 7-8`` for [0, 1, 2, 3, 5, 7, 8]."""
    parts, start = [], None
    for i, x in enumerate(layers):
        if start is None:
            start = x
        if i + 1 == len(layers) or layers[i + 1] != x + 1:
            parts.append(str(start) if start == x else f"{start}-{x}")
            start = None
    return ", ".join(parts)


__all__ = [
    "BUNDLE_NAME",
    "CARD_NAME",
    "Directions",
    "model_card",
    "push_to_hub",
    "resolve_bundle",
    "save_pretrained",
]
