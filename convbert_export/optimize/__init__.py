"""Optimized variants of an export directory: graph fusions, INT8 (dynamic or static QDQ), FP16
(and OpenVINO variants, written by :mod:`convbert_export.export.openvino`).

settings.py (OptimizeSettings, OptimizeResult), graph.py (graph maps and the one rewrite
skeleton, ``Fusion``: match, fuse, apply), rewrites.py (our fusions and ONNX Runtime's
transformer optimizer), precision.py (int8, fp16, calibration), run.py (``optimize``).

``optimize(export_dir, output_dir, settings)`` reads an export directory, writes a new
self-contained one (tokenizer and config copied, ``model.onnx`` replaced, manifest ``precision``
and ``transformations`` recording every step, fresh checksums) and validates it against the
PyTorch reference with tolerances fit for the precision. The steps, in order:

1. ``pointwise-conv-to-matmul`` (ours): the 1x1 convolution of each separable convolution
   becomes Transpose + MatMul + Add in (batch, sequence, channels) layout, so INT8 quantization
   (MatMul only) covers it; the depthwise convolution stays a Conv (ConvInteger is slower).
2. ``attention-to-multiheadattention`` (ours): the self-attention half of the mixed block
   (Reshape/Transpose x3, MatMul, Div, Add mask, Softmax, MatMul, Transpose) becomes ONE
   ``com.microsoft::MultiHeadAttention`` node fed by the Q/K/V projections and the padding mask.
   ONNX Runtime's own attention fusion does not match ConvBERT (the attention output is
   concatenated with the convolution heads), so this rewrite is ours.
3. ``ort-transformer-optimizer``: ``onnxruntime.transformers.optimizer`` (model_type ``bert``)
   fuses Add + LayerNormalization into SkipLayerNormalization and the Erf GELU (+ bias) into
   BiasGelu. (Pack-projections, between 2 and 3, merges the MatMuls that read one tensor.)
4. ``layernorm-as-instancenorm`` (ours; not for fp16): each SkipLayerNormalization /
   LayerNormalization becomes Add(s) + InstanceNormalization over (rows, 1, hidden) + Mul + Add.
   ONNX Runtime's CPU LayerNorm kernels are scalar loops (a serial sum and a division per
   element); the rewrite runs 4-6x faster per normalization (``tools/bench_layernorm.py``) and
   stays within float rounding (two-pass variance).
5. ``int8-dynamic`` (``quantize_dynamic``, MatMul with constant weights only) or ``int8-static``
   (``quantize_static``, QDQ, calibrated on texts through the export's tokenizer): LayerNorm,
   Softmax, the dynamic convolution, the embedding Gather and the classifier Gemm stay float.
6. ``fp16``: weights and activations in float16, with LayerNormalization / SkipLayerNormalization
   and every Softmax (the attention's and the dynamic convolution's) kept float32; graph inputs
   and outputs stay float32 unless ``keep_io_fp32=False``.
"""

_LAZY = {
    **{name: ("convbert_export.optimize.settings", name)
       for name in ("OptimizeSettings", "OptimizeResult", "INT8_MODES", "MS_DOMAIN", "MODEL_FILES")},
    "Fusion": ("convbert_export.optimize.graph", "Fusion"),
    **{name: ("convbert_export.optimize.rewrites", name)
       for name in ("PointwiseConvToMatMul", "PackProjections", "AttentionToMha", "pointwise_conv_to_matmul",
                    "pack_projections", "attention_to_mha", "ort_transformer_fusions", "LayerNormAsInstanceNorm",
                    "layernorm_as_instancenorm")},
    **{name: ("convbert_export.optimize.precision", name)
       for name in ("calibration_feeds", "quantize_int8_dynamic", "quantize_int8_static", "to_fp16",
                    "FP16_KEEP_FP32", "INT8_KEEP_FLOAT")},
    "optimize": ("convbert_export.optimize.run", "optimize"),
    "optimize_model_proto": ("convbert_export.optimize.run", "optimize_model_proto"),
}
__all__ = list(_LAZY)

from .._lazy import lazy_attributes  # noqa: E402

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
