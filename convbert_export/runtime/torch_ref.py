"""The PyTorch reference behind the Runner protocol.

An export directory holds no torch weights, so ``TorchRunner`` takes a reference model
directory (a checkpoint: config.json + weights, loaded with ``reference_model.load``) or an
already built model object. torch is imported only here, and only when the runner starts.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, reference_errors
from ..tasks import TaskSpec, get_task, task_for_architecture
from .base import ModelLimits, Runner, TensorMeta

__all__ = ["TorchRunner", "reference_model_for"]


class TorchRunner(Runner):
    """Runs the reference model (``reference_model``) with torch, in eval mode, without grad.

    Args:
        model: a checkpoint directory or a reference model object (a head with ``.config``).
        task: the task; default: the model's ``architectures`` entry.
        exact_padding: if not None, calls ``model.set_exact_padding(exact_padding)`` (True
            matches an export whose manifest says ``padding: "exact"``).
        limits: input value ranges; default: read from the model's config.
    """

    @classmethod
    def for_export(cls, manifest, model=None) -> "TorchRunner":
        """The reference runner for an export (see :func:`reference_model_for`)."""
        return cls(reference_model_for(manifest, model), task=manifest.task)

    def __init__(
        self,
        model,
        task: str | None = None,
        exact_padding: bool | None = None,
        limits: ModelLimits | None = None,
    ):
        super().__init__(limits=limits, name="TorchRunner")
        self._source = model
        self._task_name = task
        self.exact_padding = exact_padding
        self.model = None
        self.task: TaskSpec | None = get_task(task) if task else None

    def start_impl(self) -> None:
        import torch  # noqa: F401 - lazily, on start

        model = self._source
        if isinstance(model, (str, os.PathLike)):
            import reference_model

            from ..hub import resolve_checkpoint  # a Hub id (org/name[@revision]) or a directory

            architecture = get_task(self._task_name).architecture if self._task_name else None
            with reference_errors():  # the reference model knows heads (architectures), not our tasks
                model = reference_model.load(resolve_checkpoint(model)[0], task=architecture)
        if not hasattr(model, "config"):
            raise InvalidInputError(
                f"TorchRunner expects a checkpoint directory or a reference model, got {type(model).__name__}"
            )
        model.eval()
        if self.exact_padding is not None:
            model.set_exact_padding(self.exact_padding)
        if self.task is None:
            self.task = task_for_architecture(type(model).__name__)
        config = model.config
        if self.limits == ModelLimits():
            self.limits = ModelLimits(
                vocab_size=getattr(config, "vocab_size", None),
                type_vocab_size=getattr(config, "type_vocab_size", None),
                max_position_embeddings=getattr(config, "max_position_embeddings", None),
                pad_token_id=getattr(config, "pad_token_id", None),
            )
        self.model = model
        self.input_metadata = {
            name: TensorMeta(name, np.dtype(np.int64), axes) for name, axes in self.task.inputs.items()
        }
        self.output_names = self.task.output_names

    def close_impl(self) -> None:
        self.model = None

    def describe(self) -> dict:
        import torch

        return {"name": self.name, "backend": f"torch {torch.__version__} (reference, fp32 eager)",
                "task": self.task.name if self.task else None, "precision": "fp32"}

    @contextmanager
    def padding_semantics(self, exact: bool):
        """Run with (``exact=True``) or without the exact-padding masks for a while."""
        before = self.model.exact_padding
        try:
            self.model.set_exact_padding(exact)
            yield self
        finally:
            self.model.set_exact_padding(before)

    def run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in feeds.items()}
        with torch.inference_mode():
            out = self.model(**tensors)
        return {name: out[name].detach().float().cpu().numpy() for name in self.output_names}


def reference_model_for(manifest, model=None):
    """The reference head for an export: ``model`` (module or checkpoint dir) or the manifest's
    source (a preset and seed, or a checkpoint path); eval mode, with the export's padding
    semantics. ``manifest`` is a :class:`convbert_export.manifest.Manifest`."""
    with reference_errors():
        model = _reference_model(manifest, model)
    get_task(manifest.task).check_head(model)
    model.eval()
    model.set_exact_padding(manifest.padding == "exact")
    return model


def _reference_model(manifest, model):
    import reference_model

    architecture = get_task(manifest.task).architecture  # the reference model knows heads, not tasks

    if model is None:
        source = manifest.source
        if source.get("preset"):
            model = reference_model.from_preset(source["preset"], architecture, seed=int(source.get("seed", 0)))
        elif source.get("checkpoint"):
            path = Path(source["checkpoint"])
            if not path.is_dir() and source.get("hub"):  # a Hub snapshot gone from this cache: fetch that commit
                from ..hub import resolve_checkpoint

                path = resolve_checkpoint(f"{source['hub']['repo_id']}@{source['hub']['commit']}")[0]
            if not path.is_dir():
                raise InvalidInputError(
                    f"the export's source checkpoint {str(path)!r} no longer exists; "
                    "pass the checkpoint with --model DIR (model=...)"
                )
            model = reference_model.load(path, task=architecture)
        else:
            raise InvalidInputError("the manifest names no source model; pass the checkpoint with --model DIR (model=...)")
    elif isinstance(model, (str, Path)):
        from ..hub import resolve_checkpoint  # a Hub id (org/name[@revision]) or a directory

        model = reference_model.load(resolve_checkpoint(model)[0], task=architecture)
    return model
