"""EngineSettings: everything a TensorRT build takes besides the export directory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from .backends import get_backend
from .profiles import Profile

#: Environment variable naming the DynamicConv TensorRT plugin library (full TensorRT only).
PLUGIN_ENV = "CONVBERT_TRT_PLUGIN"


@dataclass(frozen=True)
class EngineSettings:
    """How to build an engine.

    Attributes:
        backend: ``"tensorrt"`` (data-center and desktop GPUs; plugins; FP16/INT8 builder flags)
            or ``"tensorrt-rtx"`` (TensorRT for RTX: strongly typed, builds without a GPU,
            compiles for the card at run time; no plugins).
        fp16: let TensorRT pick FP16 kernels (builder flag; TensorRT only). With TensorRT for
            RTX, build from an fp16 export directory instead (``convbert-export optimize``).
        int8: INT8 with post-training calibration (TensorRT only; needs ``calibration``).
        calibration: a JSON-lines file of calibration inputs: each line either
            ``{"text": ..., "text_pair": ...}`` (tokenized with the export's tokenizer.json) or
            ``{"input_ids": [...], "attention_mask": [...], "token_type_ids": [...]}``.
        calibration_cache: where the INT8 calibration cache is read and written
            (default: beside ``calibration``, suffix ``.calib``).
        profiles: optimization profiles (Profiles, or ``--profile`` texts, which build_engine
            parses for the export's task); empty = one default profile derived from the manifest
            (batch 1..32 opt 8, sequence 1..max_position_embeddings opt 128, num_choices 1..8).
        timing_cache: a timing-cache file loaded before and saved after the build, so rebuilds
            are fast and pick the same kernels. None = no cache file.
        workspace_mb: the builder's workspace memory limit; None = TensorRT's default.
        plugin_library: the DynamicConv plugin library for custom-op exports (TensorRT only);
            None = the ``CONVBERT_TRT_PLUGIN`` environment variable.
        force: replace an existing output directory.
    """

    backend: str = "tensorrt"
    fp16: bool = False
    int8: bool = False
    calibration: Path | None = None
    calibration_cache: Path | None = None
    profiles: tuple[Profile | str, ...] = field(default_factory=tuple)
    timing_cache: Path | None = None
    workspace_mb: int | None = None
    plugin_library: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        backend = get_backend(self.backend)
        object.__setattr__(self, "profiles", tuple(self.profiles))
        for name in ("calibration", "calibration_cache", "timing_cache", "plugin_library"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if backend.strongly_typed and self.fp16:
            raise InvalidInputError(
                f"{backend.label} is strongly typed and has no --fp16 builder flag; build from an "
                "fp16 export directory instead (`convbert-export optimize --fp16`, manifest "
                "precision \"fp16\"), or use --backend tensorrt"
            )
        if backend.strongly_typed and self.int8:
            raise InvalidInputError(
                f"{backend.label} is strongly typed and has no --int8 builder flag or calibrator; "
                "use --backend tensorrt for calibrated INT8"
            )
        if not backend.plugins and self.plugin_library is not None:
            raise InvalidInputError(
                f"{backend.label} cannot load plugins, got a plugin library "
                f"{str(self.plugin_library)!r}; drop it (the model-local DynamicConv function is "
                "imported instead) or use --backend tensorrt"
            )
        if self.int8 and self.calibration is None:
            raise InvalidInputError(
                "--int8 needs calibration data: pass --calibration FILE.jsonl (one JSON object "
                "per line with \"text\" or \"input_ids\")"
            )
        if self.calibration is not None and not self.int8:
            raise InvalidInputError(
                "--calibration is only used with --int8; add --int8 or drop --calibration"
            )
        if self.calibration is not None and not self.calibration.is_file():
            raise InvalidInputError(
                f"calibration file {str(self.calibration)!r} does not exist; expected a JSON-lines file"
            )
        if self.workspace_mb is not None and (
            not isinstance(self.workspace_mb, int) or self.workspace_mb < 1
        ):
            raise InvalidInputError(
                f"workspace must be a positive number of MB, got {self.workspace_mb!r}"
            )
        for profile in self.profiles:
            if not isinstance(profile, (Profile, str)):
                raise InvalidInputError(
                    f"profiles must be Profile objects (see convbert_export.engine.parse_profile) or "
                    f"--profile texts such as '1,8,32:1,128,512', "
                    f"got {type(profile).__name__}"
                )

    def resolved_plugin_library(self) -> Path | None:
        """The plugin library path: the setting, else ``$CONVBERT_TRT_PLUGIN``, else None."""
        if self.plugin_library is not None:
            return self.plugin_library
        env = os.environ.get(PLUGIN_ENV)
        return Path(env) if env else None
