"""The span-based dynamic convolution of ConvBERT, as one registered torch op.

ConvBERT's convolution branch predicts, at every position and for every head, a softmax-normalized
kernel of width K and applies it to the K neighbouring positions of a value tensor:

    out[b, s, h*D + d] = sum_j softmax_j(kernel_logits[b, s, h*K:(h+1)*K])[j]
                               * value[b, s + j - (K-1)//2, h*D + d]

with ``value`` zero outside positions ``0..S-1``. transformers computes it with ``nn.Unfold``; here
it is ONE function, registered as ``torch.ops.convbert.dynamic_conv``, so the exporter can choose
its lowering (decomposed ONNX ops or one custom node) at a single seam, and the C++ kernels can be
tested against :func:`dynamic_conv_reference`.

Registration happens once per process, when this module is first imported; importing it again
(or reloading it) finds the op already defined and does nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OP_NAMESPACE = "convbert"
OP_NAME = "dynamic_conv"
QUALIFIED_NAME = f"{OP_NAMESPACE}::{OP_NAME}"


def _check_arguments(value: torch.Tensor, kernel_logits: torch.Tensor, kernel_size: int, num_heads: int) -> None:
    """Shape checks on the static parts of the shapes (safe under symbolic batch/sequence)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"dynamic_conv: kernel_size must be odd and >= 1, got {kernel_size}")
    if num_heads < 1:
        raise ValueError(f"dynamic_conv: num_heads must be >= 1, got {num_heads}")
    if value.dim() != 3 or kernel_logits.dim() != 3:
        raise ValueError(
            f"dynamic_conv: expected value (B, S, H*D) and kernel_logits (B, S, H*K), got shapes "
            f"{tuple(value.shape)} and {tuple(kernel_logits.shape)}"
        )
    if kernel_logits.shape[-1] != num_heads * kernel_size:
        raise ValueError(
            f"dynamic_conv: kernel_logits last dimension must be num_heads * kernel_size = "
            f"{num_heads * kernel_size}, got {kernel_logits.shape[-1]}"
        )
    if value.shape[-1] % num_heads != 0:
        raise ValueError(
            f"dynamic_conv: value last dimension ({value.shape[-1]}) must be a multiple of "
            f"num_heads ({num_heads})"
        )
    if value.dtype != kernel_logits.dtype:
        raise ValueError(
            f"dynamic_conv: value and kernel_logits must share a dtype, got {value.dtype} and "
            f"{kernel_logits.dtype}"
        )


def dynamic_conv_reference(
    value: torch.Tensor, kernel_logits: torch.Tensor, kernel_size: int, num_heads: int
) -> torch.Tensor:
    """The plain-torch span convolution: pad, softmax over K, K shifted slices weighted and summed.

    Args:
        value: (B, S, H*D), the ``conv_out_layer`` output.
        kernel_logits: (B, S, H*K), the ``conv_kernel_layer`` output, before the softmax.
        kernel_size: K, odd.
        num_heads: H.

    Returns:
        (B, S, H*D) in the input dtype.
    """
    _check_arguments(value, kernel_logits, kernel_size, num_heads)
    batch, seq = value.shape[0], value.shape[1]
    pad = (kernel_size - 1) // 2
    heads = value.reshape(batch, seq, num_heads, -1)  # (B, S, H, D)
    kernel = kernel_logits.reshape(batch, seq, num_heads, kernel_size)  # (B, S, H, K)
    kernel = torch.softmax(kernel, dim=-1)  # (B, S, H, K)
    padded = F.pad(heads, (0, 0, 0, 0, pad, pad))  # (B, S + K - 1, H, D)
    out = padded[:, 0:seq] * kernel[..., 0:1]  # (B, S, H, D)
    for j in range(1, kernel_size):
        out = out + padded[:, j : j + seq] * kernel[..., j : j + 1]  # (B, S, H, D)
    return out.reshape(batch, seq, -1)  # (B, S, H*D)


def _op_registered() -> bool:
    try:
        getattr(getattr(torch.ops, OP_NAMESPACE), OP_NAME)
    except (AttributeError, RuntimeError):
        return False
    return True


def _register() -> None:
    if _op_registered():
        return

    @torch.library.custom_op(QUALIFIED_NAME, mutates_args=())
    def _dynamic_conv_op(value: torch.Tensor, kernel_logits: torch.Tensor, kernel_size: int, num_heads: int) -> torch.Tensor:
        return dynamic_conv_reference(value, kernel_logits, kernel_size, num_heads)

    @_dynamic_conv_op.register_fake
    def _dynamic_conv_fake(value: torch.Tensor, kernel_logits: torch.Tensor, kernel_size: int, num_heads: int) -> torch.Tensor:
        _check_arguments(value, kernel_logits, kernel_size, num_heads)
        return value.new_empty(value.shape)


_register()


def dynamic_conv(value: torch.Tensor, kernel_logits: torch.Tensor, kernel_size: int, num_heads: int) -> torch.Tensor:
    """Call the registered op ``torch.ops.convbert.dynamic_conv`` (see the module docstring)."""
    return torch.ops.convbert.dynamic_conv(value, kernel_logits, kernel_size, num_heads)


def decompositions() -> dict:
    """A decomposition-table entry that lowers the op to :func:`dynamic_conv_reference`.

    For the decomposed export path: ``table = torch.export.default_decompositions();
    table.update(decompositions()); ep = ep.run_decompositions(table)`` turns every op call into
    Pad + K shifted slices (checked: then ``torch.onnx.export(ep, dynamo=True)`` needs no
    translation and ONNX Runtime matches the model within 1e-8).
    """
    return {torch.ops.convbert.dynamic_conv.default: dynamic_conv_reference}
