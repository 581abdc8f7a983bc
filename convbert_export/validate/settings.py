"""What validation runs and how strict it is: :class:`ValidationSettings` and the defaults by
an export's precision (the agreement and cosine thresholds are defined here, once)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..manifest import Manifest
from ..tasks import get_task

# the thresholds quantized (fp16, int8) exports are held to, by default
MIN_AGREEMENT = 0.99
MIN_COSINE = 0.999


@dataclass(frozen=True)
class ValidationSettings:
    """What to run and how strict to be (checked at construction).

    Attributes:
        atol, rtol: tolerances (None: by the export's precision, see PRECISION_DEFAULTS; the
            task's 1e-5 for plain fp32).
        batches, sequences: the random grid; ``0`` in sequences means max_position_embeddings.
        num_choices: choices per example for multiple choice.
        texts: also run the packaged validation texts through the tokenizer.
        min_agreement: fail when task agreement is below this fraction (None: the precision's
            default: 0.99 for fp16 and int8, report only for fp32).
        min_cosine: fail when hidden-state cosine is below this (None: 0.999 for fp16 and
            int8, report only for fp32).
        use_library: for custom-op exports, register the DynamicConv library ("auto": if it
            builds; True: required; False: run the model-local function instead).
        seed: seed of the random inputs.
        load_inputs: an npz of model inputs (``--save-inputs`` writes one) to run instead of
            the grid and the texts (see ``validate/replay.py``).
        save_inputs, save_outputs: write the worst case's inputs / outputs there (npz).
        provider: where to run the candidate: for an export directory the ONNX Runtime
            provider (cpu, the default, cuda, tensorrt) or ``openvino`` (OpenVINO on the CPU;
            OpenVINO export directories always validate there); an engine directory runs on
            TensorRT (leave it None or pass tensorrt). An unavailable provider is an error, never a
            silent fallback (the report says where it ran).
    """

    atol: float | None = None
    rtol: float | None = None
    batches: tuple[int, ...] = (1, 2, 5)
    sequences: tuple[int, ...] = (1, 7, 128, 0)
    num_choices: tuple[int, ...] = (2, 4)
    texts: bool = True
    min_agreement: float | None = None
    min_cosine: float | None = None
    use_library: bool | str = "auto"
    seed: int = 0
    provider: str | None = None
    load_inputs: str | None = None
    save_inputs: str | None = None
    save_outputs: str | None = None

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Refuse settings that would make the comparison meaningless (a NaN tolerance passes everything)."""
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"{name} must be a finite number >= 0, got {value:g}; pass e.g. --{name} 1e-4")
        for name in ("min_agreement", "min_cosine"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be within [0, 1], got {value:g}")

    @property
    def custom_ops(self) -> str:
        """``use_library`` as the runner's ``custom_ops`` mode."""
        return {True: "required", False: "off"}.get(self.use_library, "auto")


# Defaults by the export's precision: (atol, rtol, min_agreement, min_cosine). fp32 exports are
# held to the task's tolerances (1e-5); fused fp32 graphs reorder float sums (1e-4); fp16 and
# int8 are judged by task agreement and hidden-state cosine, with their value differences
# reported (int8's atol is effectively off).
PRECISION_DEFAULTS: dict[str, tuple[float, float, float | None, float | None]] = {
    "fp32-fused": (1e-4, 1e-4, None, None),
    "fp16": (2e-2, 2e-2, MIN_AGREEMENT, MIN_COSINE),
    "int8-dynamic": (1e9, 0.0, MIN_AGREEMENT, MIN_COSINE),
    "int8-static": (1e9, 0.0, MIN_AGREEMENT, MIN_COSINE),
    # OpenVINO variants (convbert_export.export.openvino): judged like int8 and fp16
    "bf16": (1e9, 0.0, MIN_AGREEMENT, MIN_COSINE),
    "int8-per-token": (1e9, 0.0, MIN_AGREEMENT, MIN_COSINE),
    "int8-per-token-bf16": (1e9, 0.0, MIN_AGREEMENT, MIN_COSINE),
}


def default_checks(manifest: Manifest) -> tuple[float, float, float | None, float | None]:
    """Tolerances and thresholds for an export, from its precision and transformations."""
    spec = get_task(manifest.task)
    key = manifest.precision
    if key == "fp32" and manifest.transformations:
        key = "fp32-fused"
    return PRECISION_DEFAULTS.get(key, (spec.atol, spec.rtol, None, None))


def resolve_checks(manifest: Manifest, settings: ValidationSettings) -> tuple[float, float, float | None, float | None]:
    """(atol, rtol, min_agreement, min_cosine): the settings' values, else the precision's defaults."""
    defaults = default_checks(manifest)
    given = (settings.atol, settings.rtol, settings.min_agreement, settings.min_cosine)
    return tuple(d if g is None else g for g, d in zip(given, defaults))  # type: ignore[return-value]
