"""OpenVINO variants of an export directory: f32, bf16, int8 (weights) with per-token int8 activations.

``convbert-export optimize EXPORT_DIR -o OUT --openvino VARIANT`` (``OptimizeSettings(openvino=...)``)
converts the fp32 ONNX export to OpenVINO's IR and writes an export directory holding
``openvino_model.xml`` / ``openvino_model.bin`` instead of ``model.onnx``, with the tokenizer and
config copied, checksums of every file, and ``backend: "openvino"`` in the manifest. What the
variant needs at run time (inference precision, dynamic activation quantization) is recorded in
the manifest's ``backend_options`` and applied by :class:`~convbert_export.runtime.openvino.OpenVinoRunner`,
so the directory runs as validated. Every variant is validated like the ONNX Runtime ones (task
agreement >= 0.99 and hidden-state cosine >= 0.999 except for f32, which is held to 1e-4).

The variants (one registry, :data:`VARIANTS`):

* ``f32``: the graph as exported; OpenVINO's CPU plugin would pick bf16 by itself on CPUs with
  native bf16, so the runner pins ``INFERENCE_PRECISION_HINT=f32``.
* ``bf16``: f32 weights, bf16 inference precision; refused on CPUs without AVX512_BF16 or AMX
  (OpenVINO would run f32, and the variant's speed would be a lie).
* ``int8``: weights compressed to int8 (``nncf.compress_weights``, INT8_SYM, one scale per output
  channel; the embedding tables and a pooled classifier head stay float, as in the ONNX Runtime
  int8 variants), activations of those layers quantized at run time PER TOKEN in groups of 32
  channels (CPU property ``DYNAMIC_QUANTIZATION_GROUP_SIZE=32``). No calibration, dynamic batch
  and sequence kept, and a text's activation scales depend on that text only: its result does
  not depend on its batch-mates (``batch_invariant: true``), unlike ONNX Runtime's dynamic int8
  (one scale per batch). It does depend on the padded length (f32 sums of another length round
  differently, and int8 rounding amplifies that: 0.049 on conv-bert-base logits), so the
  manifest asks pipelines to pad to multiples of 16 and batch equal padded lengths
  (``backend_options.pad_to_multiple_of``): a text then gives exactly its solo answer in any batch.
* ``int8-bf16``: the same with bf16 inference precision (needs native bf16, as ``bf16``).

NNCF's static post-training int8 (``nncf.quantize``) is not offered: measured on conv-bert-base it
was shape-specific (the calibrated graph failed at other sequence lengths) and below the cosine
threshold as configured; see docs/ARCHITECTURE.md "Facts".

Imports openvino and nncf lazily.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, MissingDependencyError, lookup
from ..progress import QUIET, Progress

__all__ = ["OpenVinoVariant", "VARIANTS", "get_variant", "write_openvino_variant", "check_bf16", "pooled_head_matmuls"]


PAD_MULTIPLE = 16


@dataclass(frozen=True)
class OpenVinoVariant:
    """One OpenVINO variant.

    Attributes:
        name: the ``--openvino`` value.
        precision: the manifest's ``precision`` (also the key of its validation defaults).
        inference_precision: OpenVINO's ``INFERENCE_PRECISION_HINT`` (``f32`` or ``bf16``).
        weights: ``nncf.compress_weights`` mode (``int8_sym``) or None for float weights.
        dynamic_quantization_group_size: ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` for the int8-weight
            layers' activations (per token, groups of this many channels); None: not set.
        description: one line for help texts and reports.
    """

    name: str
    precision: str
    inference_precision: str
    weights: str | None
    dynamic_quantization_group_size: int | None
    description: str


VARIANTS: dict[str, OpenVinoVariant] = {
    v.name: v
    for v in (
        OpenVinoVariant("f32", "fp32", "f32", None, None, "OpenVINO IR, f32 inference"),
        OpenVinoVariant("bf16", "bf16", "bf16", None, None, "OpenVINO IR, bf16 inference (needs AVX512_BF16 or AMX)"),
        OpenVinoVariant("int8", "int8-per-token", "f32", "int8_sym", 32,
                        "int8 weights, per-token dynamic int8 activations (groups of 32), f32 elsewhere; exact batching"),
        OpenVinoVariant("int8-bf16", "int8-per-token-bf16", "bf16", "int8_sym", 32,
                        "int8 weights, per-token dynamic int8 activations, bf16 elsewhere (needs AVX512_BF16 or AMX)"),
    )
}


def get_variant(name: str) -> OpenVinoVariant:
    return lookup(VARIANTS, name, "OpenVINO variant")


def check_bf16(variant: OpenVinoVariant, cpu=None) -> None:
    """Refuse a bf16 variant on a CPU without native bf16 (AVX512_BF16 or AMX-BF16), with the reason."""
    if variant.inference_precision != "bf16":
        return
    from ..cpu import cpu_features

    cpu = cpu or cpu_features()
    if not cpu.native_bf16:
        raise InvalidInputError(
            f"the OpenVINO {variant.name} variant needs native bf16 (AVX512_BF16 or AMX), which this CPU "
            f"({cpu.model}) lacks: OpenVINO would run it in f32 and neither its speed nor its accuracy would be "
            "what was validated; choose --openvino f32 or int8"
        )


@contextmanager
def _stdout_to_stderr():
    """Send file descriptor 1 to stderr inside the block: nncf logs (an INFO handler on stdout) and
    draws a progress bar there, which would corrupt ``--json`` output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with redirect_stdout(sys.stderr):  # what writes to sys.stdout when that is not fd 1
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _import_nncf():
    try:
        import nncf
    except ImportError as exc:
        raise MissingDependencyError(
            f"nncf is not installed ({exc}); pip install 'convbert-export[openvino]' (nncf>=2.10)"
        ) from None
    return nncf


def pooled_head_matmuls(model) -> list[str]:
    """Names of the MatMuls with a constant weight that read a rank-2 (batch, hidden) input: the
    pooled classification head (text classification, multiple choice); the encoder's and the
    token-level heads' MatMuls read (batch, sequence, hidden)."""
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        data, weight = op.input_value(0), op.input_value(1)
        if data.get_partial_shape().rank.get_length() == 2 and _is_constant(weight.get_node()):
            names.append(op.get_friendly_name())
    return names


def _is_constant(node) -> bool:
    """A Constant, possibly behind Convert/Transpose/Reshape (weights as the ONNX frontend reads them)."""
    while node.get_type_name() in ("Convert", "Transpose", "Reshape"):
        node = node.input_value(0).get_node()
    return node.get_type_name() == "Constant"


def _first_token_graph(source_model: Path, work: Path) -> tuple[Path, int]:
    """``source_model`` with ``optimize.rewrites.FirstTokenOnly`` applied (a head that reads
    position 0 gets the last layer's token-wise tail for that position alone), saved in ``work``;
    the source itself when the rewrite finds nothing."""
    import onnx

    from ..optimize.rewrites import first_token_only

    model = onnx.load(str(source_model))
    count = first_token_only(model)
    if not count:
        return source_model, 0
    path = work / source_model.name
    # one file when protobuf can hold it (a custom-op export's functions are inlined in memory)
    external = model.ByteSize() >= 2**31 - 2**20
    onnx.save_model(model, str(path), save_as_external_data=external, location=path.name + ".data")
    return path, count


def write_openvino_variant(source_model: Path, manifest, directory: Path, variant: OpenVinoVariant,
                           progress: Progress | None = None) -> tuple[list[dict], dict, dict]:
    """Convert ``source_model`` (an fp32 ``model.onnx``) into ``directory/openvino_model.{xml,bin}``.

    Returns ``(transformation steps, backend_options for the manifest, op counts of the IR)``.
    """
    from ..runtime.openvino import import_openvino

    progress = progress or QUIET
    check_bf16(variant)
    ov = import_openvino()
    core = ov.Core()
    # the rewritten graph's weights stay on disk until the IR is written (OpenVINO maps them)
    work = tempfile.TemporaryDirectory(dir=directory.parent, prefix=".first-token-")
    try:
        return _write_ir(core, ov, source_model, Path(work.name), manifest, directory, variant, progress)
    finally:
        work.cleanup()


def _write_ir(core, ov, source_model: Path, work: Path, manifest, directory: Path, variant: OpenVinoVariant,
              progress: Progress) -> tuple[list[dict], dict, dict]:
    from ..runtime.openvino import IR_BIN, IR_XML, read_onnx

    with progress.step("reading the ONNX model into OpenVINO"):
        source, pruned = _first_token_graph(source_model, work)
        model = read_onnx(core, source, manifest.to_dict())
    steps: list[dict] = [{"step": "openvino-ir", "tool": f"openvino {ov.get_version()}",
                          "dynamic_conv": "function body inlined" if manifest.uses_custom_op else "decomposed",
                          "weights": "f32"}]
    if pruned:
        steps.append({"step": "first-token-only", "tool": "convbert_export", "rewritten": pruned})
    if variant.weights:
        nncf = _import_nncf()
        mode = {"int8_sym": nncf.CompressWeightsMode.INT8_SYM, "int8_asym": nncf.CompressWeightsMode.INT8_ASYM}[variant.weights]
        head = pooled_head_matmuls(model)
        # like the ONNX Runtime int8 variants: the embedding tables and the pooled classifier
        # head stay float (measured on conv-bert-base: with them int8 one of 73 validation rows,
        # the one with the smallest margin, flipped its label)
        scope = nncf.IgnoredScope(types=["Gather"], names=head, validate=False)
        with progress.step(f"compressing weights ({variant.weights}, nncf {nncf.__version__})"), _stdout_to_stderr():
            model = nncf.compress_weights(model, mode=mode, ignored_scope=scope)
        steps.append({"step": "int8-weights", "tool": f"nncf.compress_weights {nncf.__version__}", "mode": variant.weights,
                      "granularity": "per output channel",
                      "kept_float": ["Gather (embeddings)", f"pooled classifier head ({len(head)} MatMul)"]})
    if variant.dynamic_quantization_group_size:
        steps.append({"step": "int8-dynamic-activations", "tool": "openvino CPU plugin",
                      "property": "DYNAMIC_QUANTIZATION_GROUP_SIZE", "group_size": variant.dynamic_quantization_group_size,
                      "scales": "per token (and per group of channels): independent of batch-mates"})
    if variant.inference_precision != "f32":
        steps.append({"step": "inference-precision", "tool": "openvino CPU plugin", "property": "INFERENCE_PRECISION_HINT",
                      "value": variant.inference_precision})
    with progress.step(f"writing {IR_XML}"):
        ov.save_model(model, str(directory / IR_XML), compress_to_fp16=False)
    options = {"variant": variant.name, "model": IR_XML, "weights": IR_BIN, "openvino": ov.get_version(),
               "inference_precision": variant.inference_precision}
    if variant.dynamic_quantization_group_size is not None:
        options["dynamic_quantization_group_size"] = variant.dynamic_quantization_group_size
        # a row's int8 rounding is independent of its batch-mates but not of the padded length
        # (conv-bert-base: 0.049 on logits alone vs padded; 0 between batch-mates of one length):
        # pipelines pad to multiples of PAD_MULTIPLE and batch equal padded lengths, so a text
        # gives exactly the same answer alone or in any batch
        options["pad_to_multiple_of"] = PAD_MULTIPLE
    counts: dict[str, int] = {}
    for op in model.get_ops():
        counts[op.get_type_name()] = counts.get(op.get_type_name(), 0) + 1
    return steps, options, dict(sorted(counts.items()))
