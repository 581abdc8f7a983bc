"""Reading and writing checkpoints in transformers' layout.

A checkpoint directory holds ``config.json`` and weights: ``model.safetensors``, a sharded
``model.safetensors.index.json``, or, only when no safetensors file exists, ``pytorch_model.bin``
(or its ``.index.json``), read with ``torch.load(weights_only=True)`` so no pickled code runs.

Every key is checked before anything is copied: all missing, unexpected and mis-shaped keys are
reported together in one :class:`~reference_model.errors.CheckpointError` that names the file,
each key and both shapes. Like transformers, keys with or without the ``convbert.`` prefix load
into the base model part of any class (a base-model checkpoint into a head's ``convbert.``, a head
checkpoint's ``convbert.`` weights into ``ConvBertModel``); a head's own weights must be present.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .errors import CheckpointError, ConfigError, UnknownNameError

from .configuration import CONFIG_NAME, ConvBertConfig

if TYPE_CHECKING:
    from .modeling import ConvBertPreTrainedModel

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
BIN_NAME = "pytorch_model.bin"
BIN_INDEX_NAME = "pytorch_model.bin.index.json"
PREFIX = "convbert."
TIED_KEY = "generator_lm_head.weight"
# Non-persistent buffers older checkpoints may carry; never parameters.
IGNORED_KEY_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")


# ----------------------------------------------------------------------------- reading
def find_weight_files(directory: Path) -> list[Path]:
    """The weight files of a checkpoint, safetensors first; raises CheckpointError when none."""
    for single, index in ((SAFETENSORS_NAME, SAFETENSORS_INDEX_NAME), (BIN_NAME, BIN_INDEX_NAME)):
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            return _shards_from_index(directory / index)
    raise CheckpointError(
        f"no weights in checkpoint {directory}: expected one of {SAFETENSORS_NAME}, "
        f"{SAFETENSORS_INDEX_NAME}, {BIN_NAME}, {BIN_INDEX_NAME}, got "
        f"{sorted(p.name for p in directory.iterdir()) or 'an empty directory'}"
    )


def _shards_from_index(index_path: Path) -> list[Path]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"shard index {index_path} is malformed: expected JSON with a 'weight_map' object, got {err!r}"
        ) from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(
            f"shard index {index_path} is malformed: expected 'weight_map' to map tensor names to file names"
        )
    root = index_path.parent.resolve()
    shards = []
    for name in dict.fromkeys(weight_map.values()):
        path = index_path.parent / name
        if root not in path.resolve().parents:  # "../x", "/abs/x" or a symlink leaving the directory
            raise CheckpointError(
                f"shard index {index_path} names {name!r}, which is outside the checkpoint directory "
                f"{str(index_path.parent)!r}; shards must be files inside it"
            )
        if not path.is_file():
            raise CheckpointError(
                f"shard index {index_path} names {name!r}, which does not exist in {index_path.parent}"
            )
        shards.append(path)
    return shards


def read_state_dict(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of a checkpoint directory and, for each key, the file it came from."""
    directory = Path(directory)
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for path in find_weight_files(directory):
        tensors = _read_file(path)
        for key, tensor in tensors.items():
            state[key] = tensor
            origin[key] = path.name
    return state, origin


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if path.name.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"cannot read {path}: {err}") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for non-tensor objects, RuntimeError for corrupt files
        raise CheckpointError(
            f"cannot read {path} with torch.load(weights_only=True) (only plain tensors are accepted, "
            f"never pickled code): {_pickle_reason(err)}; convert the checkpoint to safetensors "
            "(with the tool that wrote it, on a machine you trust)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a mapping of names to tensors, got {type(state).__name__}")
    return state


def _pickle_reason(err: Exception) -> str:
    """What torch.load refused, without torch's advice to retry with weights_only=False (which
    runs the file's pickled code)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if "weights_only" not in line and "torch.load" not in line
              and not line.startswith("Weights only load failed")]
    return useful[0] if useful else type(err).__name__


# ----------------------------------------------------------------------------- key matching
def _adapt_prefix(state: dict[str, torch.Tensor], origin: dict[str, str], has_prefix: bool):
    """Add or strip ``convbert.`` the way transformers does; returns (state, origin, dropped)."""
    checkpoint_prefixed = any(key.startswith(PREFIX) for key in state)
    if has_prefix and not checkpoint_prefixed:  # base model saved alone, loaded into a head
        return ({PREFIX + k: v for k, v in state.items()}, {PREFIX + k: v for k, v in origin.items()}, [])
    if not has_prefix and checkpoint_prefixed:  # a head checkpoint loaded as the base model
        kept = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
        kept_origin = {k[len(PREFIX):]: v for k, v in origin.items() if k.startswith(PREFIX)}
        dropped = [k for k in state if not k.startswith(PREFIX)]
        return kept, kept_origin, dropped
    return state, origin, []


def heads_in_checkpoint(keys, config: ConvBertConfig | None = None) -> list[str]:
    """Which task heads a checkpoint holds, from config.json's ``architectures`` or its keys."""
    from .modeling import MODEL_CLASSES

    if config is not None and config.architectures:
        known = [a for a in config.architectures if a in MODEL_CLASSES]
        if known:
            return known
    keys = set(keys)
    heads = []
    if any(k.startswith("generator_") for k in keys):
        heads.append("ConvBertForMaskedLM")
    if "classifier.out_proj.weight" in keys:
        heads.append("ConvBertForSequenceClassification")
    if "qa_outputs.weight" in keys:
        heads.append("ConvBertForQuestionAnswering")
    if any(k.startswith("sequence_summary.") for k in keys):
        heads.append("ConvBertForMultipleChoice")
    elif "classifier.weight" in keys:
        heads.append("ConvBertForTokenClassification or ConvBertForMultipleChoice")
    return heads or ["ConvBertModel"]


def load_state_into(model: "ConvBertPreTrainedModel", directory: str | os.PathLike) -> None:
    """Copy a checkpoint's weights into ``model`` after checking every key and shape."""
    directory = Path(directory)
    state, origin = read_state_dict(directory)
    raw_keys = list(state)
    has_prefix = hasattr(model, "convbert")
    state, origin, _dropped_head_keys = _adapt_prefix(state, origin, has_prefix)
    state = {k: v for k, v in state.items() if not k.endswith(IGNORED_KEY_SUFFIXES)}

    expected = model.state_dict()
    tied = getattr(model.config, "tie_word_embeddings", False) and TIED_KEY in expected
    problems: list[str] = []
    for key, param in expected.items():
        if key not in state:
            if tied and key == TIED_KEY:
                continue
            problems.append(f"missing key {key} (model shape {tuple(param.shape)})")
        elif tuple(state[key].shape) != tuple(param.shape):
            problems.append(
                f"mis-shaped key {key} in {origin[key]}: checkpoint shape {tuple(state[key].shape)}, "
                f"model shape {tuple(param.shape)}"
            )
    for key in state:
        if key not in expected:
            problems.append(f"unexpected key {key} in {origin[key]} (shape {tuple(state[key].shape)})")
    if problems:
        files = ", ".join(sorted(set(origin.values()))) or "no tensors"
        try:
            config = ConvBertConfig.from_pretrained(directory)
        except ConfigError:
            config = None
        heads = heads_in_checkpoint(raw_keys, config)
        raise CheckpointError(
            f"checkpoint {directory} ({files}) does not match {type(model).__name__}: "
            f"{len(problems)} problem(s):\n  " + "\n  ".join(problems) + "\n"
            f"The checkpoint holds: {', '.join(heads)}. Load it as that head (its task), or as "
            f"feature-extraction (ConvBertModel) to use only the base weights; a different head "
            f"needs its own trained weights."
        )
    if tied:
        state.pop(TIED_KEY, None)  # the tied weight IS the word embedding
    with torch.no_grad():
        for key, param in expected.items():
            if key in state:
                param.copy_(state[key].to(param.dtype))
    _warn_nonfinite(state, directory)


def _warn_nonfinite(state: dict[str, torch.Tensor], directory: Path) -> None:
    """One warning naming the tensors holding NaN or Inf: such a model's outputs are NaN/Inf."""
    bad = [key for key, value in state.items() if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        import warnings

        warnings.warn(
            f"checkpoint {directory}: non-finite (NaN/Inf) weights in {len(bad)} tensors "
            f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); the model's outputs will be "
            "NaN/Inf and validation fails: use another checkpoint",
            RuntimeWarning,
            stacklevel=4,
        )


# ----------------------------------------------------------------------------- writing
def save_model(model: "ConvBertPreTrainedModel", directory: str | os.PathLike) -> Path:
    """Write ``model.safetensors`` (tied weight stored once) and ``config.json`` with architectures."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.replace(architectures=[type(model).__name__])
    state = model.state_dict()
    if config.tie_word_embeddings and TIED_KEY in state:
        del state[TIED_KEY]  # transformers re-ties it on load
    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    write_atomic(directory / SAFETENSORS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    config.save_pretrained(directory)
    return directory


def _read_config(directory: Path) -> ConvBertConfig:
    if not directory.is_dir():
        raise CheckpointError(
            f"checkpoint directory not found: expected a directory with {CONFIG_NAME} and weights, "
            f"got {directory} ({'a file' if directory.exists() else 'no such path'})"
        )
    if not (directory / CONFIG_NAME).is_file():
        raise CheckpointError(
            f"checkpoint {directory} has no {CONFIG_NAME}: expected {directory / CONFIG_NAME}; "
            f"save the model with save_pretrained or copy its config.json there"
        )
    return ConvBertConfig.from_pretrained(directory)


class PretrainedMixin:
    """``from_pretrained`` / ``save_pretrained`` for every model class."""

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, config: ConvBertConfig | None = None):
        """Build this class from a checkpoint directory (config.json + weights)."""
        directory = Path(directory)
        checkpoint_config = _read_config(directory)
        model = cls(config or checkpoint_config)
        load_state_into(model, directory)
        model.source = {"checkpoint": str(directory.resolve())}
        return model

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write a checkpoint transformers' ``from_pretrained`` loads with no missing keys."""
        return save_model(self, directory)


# ----------------------------------------------------------------------------- load()
def load(directory: str | os.PathLike, task: str | None = None) -> "ConvBertPreTrainedModel":
    """Load a checkpoint as the head named by ``task`` or, without one, by config.json.

    ``task`` names the head: a transformers pipeline task (``fill-mask``,
    ``text-classification``... see ``TASK_HEADS``) or an architecture (``ConvBertForMaskedLM``).
    ``feature-extraction`` loads the base weights of any head checkpoint. Without a task, the
    first ConvBERT class in ``architectures`` is used (or the head recognised from the keys).
    """
    from .modeling import MODEL_CLASSES

    directory = Path(directory)
    if task is not None:
        head_architecture(task)  # an unknown task fails before any file is read
    config = _read_config(directory)
    if task is not None:
        architecture = head_architecture(task)
    else:
        known = [a for a in (config.architectures or []) if a in MODEL_CLASSES]
        if known:
            architecture = known[0]
        else:
            state, _ = read_state_dict(directory)
            guesses = [h for h in heads_in_checkpoint(state) if h in MODEL_CLASSES]
            architecture = guesses[0] if len(guesses) == 1 else "ConvBertModel"
    return MODEL_CLASSES[architecture].from_pretrained(directory)


def head_architecture(task: str) -> str:
    """The head class name for a pipeline task or an architecture name (``fill-mask`` ->
    ``ConvBertForMaskedLM``); a miss lists the tasks."""
    from .modeling import MODEL_CLASSES, TASK_HEADS

    if task in MODEL_CLASSES:
        return task
    try:
        return TASK_HEADS[task]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown task {task!r}; expected one of: {', '.join(TASK_HEADS)}") from None


def write_atomic(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place (a
    crash never leaves a half-written file); the file gets the usual umask permissions."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600: give the file normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = [
    "head_architecture",
    "write_atomic",
    "PretrainedMixin",
    "load",
    "load_state_into",
    "read_state_dict",
    "find_weight_files",
    "heads_in_checkpoint",
    "save_model",
]
