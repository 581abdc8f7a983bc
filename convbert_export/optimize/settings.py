"""What ``optimize`` does (:class:`OptimizeSettings`) and what it reports (:class:`OptimizeResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, lookup
from ..validate.settings import MIN_AGREEMENT, MIN_COSINE

INT8_MODES = (None, "dynamic", "static")
MS_DOMAIN = "com.microsoft"
MODEL_FILES = ("model.onnx", "model.onnx.data")


@dataclass(frozen=True)
class OptimizeSettings:
    """What to do to an export (checked at construction).

    Attributes:
        fuse: run the graph rewrites (pointwise conv -> MatMul, attention -> MultiHeadAttention)
            and ONNX Runtime's transformer optimizer (SkipLayerNormalization, BiasGelu).
        attention: fuse the attention half into ``com.microsoft::MultiHeadAttention``.
        pack: merge the projections that read the same tensor (query, key, value, conv_out)
            into one wide MatMul + Split.
        instance_norm: rewrite (Skip)LayerNormalization as InstanceNormalization + Mul + Add
            (ONNX Runtime's CPU LayerNorm kernels are scalar: 4-6x slower on 128 x 768; see
            ``optimize.rewrites.LayerNormAsInstanceNorm``). Not applied to fp16 variants (GPUs,
            whose fused kernels are fast).
        first_token: when the head reads only position 0 (text classification), run the last
            layer's token-wise tail (output projection, feed-forward, norms) for that position
            alone (``optimize.rewrites.FirstTokenOnly``; same numbers, ~1/13 less work on
            conv-bert-base). Graphs with per-token outputs are left as they are. ``None``: on,
            except for static int8, whose calibrated ranges for that tail would then come from
            one row per text (measured on the demo grid: argmax 60/61 instead of 61/61).
        cpu_ops: in exports that already need our custom-op library (``custom-op`` DynamicConv),
            run SkipLayerNormalization as our vectorized ``AddLayerNorm``, the depthwise
            convolution (with its mask and transposes) as ``DepthwiseConv`` and
            ``com.microsoft::BiasGelu`` as our vectorized ``BiasGelu``
            (``optimize.cpu_ops``). Not applied to fp16 variants (float32 kernels).
        int8: ``None``, ``"dynamic"`` (weights int8, activations quantized per call) or
            ``"static"`` (QDQ with calibrated activation ranges).
        fp16: float16 weights and activations (for GPUs); exclusive with ``int8``.
        openvino: write an OpenVINO variant instead (``f32``, ``bf16``, ``int8``, ``int8-bf16``; see
            :mod:`convbert_export.export.openvino`); exclusive with ``int8`` and ``fp16``.
        calibration: JSON-lines file of texts (``{"text": ...}`` per line, optionally
            ``text_pair``) for static INT8; ``None``: the packaged validation texts.
        calibration_batches: at most this many batches of 8 texts are used for calibration.
        per_channel: per-output-channel weight scales (int8).
        reduce_range: 7-bit weights (for CPUs without VNNI; slower where VNNI exists).
        keep_io_fp32: fp16 models keep float32 graph inputs/outputs (casts inside).
        validate: validate the result against the reference (the manifest's source).
        min_agreement: task agreement threshold (argmax/top-5/span) for int8 and fp16.
        min_cosine: hidden-state cosine threshold for int8 and fp16.
        atol, rtol: value tolerances; ``None``: 1e-4 for fused fp32, 2e-2 for fp16, and for
            int8 values are reported but not checked (the thresholds above decide).
    """

    fuse: bool = True
    attention: bool = True
    pack: bool = True
    instance_norm: bool = True
    first_token: bool | None = None
    cpu_ops: bool = True
    int8: str | None = None
    fp16: bool = False
    openvino: str | None = None
    calibration: str | Path | None = None
    calibration_batches: int = 16
    per_channel: bool = True
    reduce_range: bool = False
    keep_io_fp32: bool = True
    validate: bool = True
    min_agreement: float = MIN_AGREEMENT
    min_cosine: float = MIN_COSINE
    atol: float | None = None
    rtol: float | None = None

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        if self.int8 is not None:  # None: no int8
            lookup([mode for mode in INT8_MODES if mode], self.int8, "int8 mode")
        if self.int8 and self.fp16:
            raise InvalidInputError("int8 and fp16 are exclusive: choose --int8 (CPU) or --fp16 (GPU), not both")
        if self.openvino is not None:
            from ..export.openvino import get_variant

            get_variant(self.openvino)
            if self.int8 or self.fp16 or not self.fuse:
                raise InvalidInputError(
                    "--openvino writes an OpenVINO variant; --int8, --fp16 and --no-fuse are ONNX Runtime variants' "
                    "options: use one or the other"
                )
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise InvalidInputError(f"calibration file {str(self.calibration)!r} does not exist; expected JSON lines of texts")
        if self.calibration is not None and self.int8 != "static":
            raise InvalidInputError("--calibration is used by static INT8 only: add --int8 static")
        if not self.keep_io_fp32 and not self.fp16:
            raise InvalidInputError("--fp16-io needs --fp16 (float16 inputs/outputs of a float16 model)")
        if not self.per_channel and not self.int8:
            raise InvalidInputError("--no-per-channel needs --int8 (it sets the int8 weight scales)")
        if self.reduce_range and not self.int8:
            raise InvalidInputError("reduce_range needs int8 (it narrows the int8 weights to 7 bits)")
        if self.int8 == "static" and self.calibration_batches < 1:
            raise InvalidInputError(f"calibration_batches must be 1 or more, got {self.calibration_batches}")
        for name in ("min_agreement", "min_cosine"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be within [0, 1], got {value}")

    @property
    def prune_first_token(self) -> bool:
        """Whether the first-token rewrite runs (``first_token``, or its default)."""
        return self.first_token if self.first_token is not None else self.int8 != "static"

    @property
    def precision(self) -> str:
        if self.openvino:
            from ..export.openvino import get_variant

            return get_variant(self.openvino).precision
        if self.int8:
            return f"int8-{self.int8}"
        return "fp16" if self.fp16 else "fp32"

    def tolerances(self) -> tuple[float, float]:
        """(atol, rtol) used by validation."""
        from ..validate.settings import PRECISION_DEFAULTS

        # int8: values reported, not checked (the agreement thresholds decide)
        default = PRECISION_DEFAULTS["fp32-fused" if self.precision == "fp32" else self.precision][:2]
        return (default[0] if self.atol is None else self.atol, default[1] if self.rtol is None else self.rtol)


@dataclass
class OptimizeResult:
    path: Path
    precision: str
    transformations: list[dict]
    node_counts: dict
    size_bytes: int
    source_size_bytes: int
    elapsed_s: float
    report: object = None

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "precision": self.precision,
            "transformations": self.transformations,
            "node_counts": self.node_counts,
            "size_bytes": self.size_bytes,
            "source_size_bytes": self.source_size_bytes,
            "elapsed_s": round(self.elapsed_s, 3),
            "validation": self.report.to_dict() if self.report is not None else None,
        }
