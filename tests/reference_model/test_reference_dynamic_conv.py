"""The span-based dynamic convolution op: contract formula, transformers' unfold, fp16, export."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

import reference_model.dynamic_conv as dc
from reference_model.dynamic_conv import dynamic_conv, dynamic_conv_reference


def contract_formula(value, kernel_logits, kernel_size, num_heads):
    """out[b,s,h*D+d] = sum_j softmax_j(logits[b,s,h*K:(h+1)*K])[j] * value[b, s+j-(K-1)//2, h*D+d]."""
    batch, seq, width = value.shape
    head_dim = width // num_heads
    pad = (kernel_size - 1) // 2
    out = torch.zeros_like(value)
    for b in range(batch):
        for s in range(seq):
            for h in range(num_heads):
                weights = torch.softmax(kernel_logits[b, s, h * kernel_size:(h + 1) * kernel_size], dim=0)
                for j in range(kernel_size):
                    src = s + j - pad
                    if 0 <= src < seq:
                        out[b, s, h * head_dim:(h + 1) * head_dim] += weights[j] * value[b, src, h * head_dim:(h + 1) * head_dim]
    return out


def transformers_unfold(value, kernel_logits, kernel_size, num_heads):
    """The computation in transformers' ConvBertSelfAttention.forward (nn.functional.unfold)."""
    batch, _, width = value.shape
    head_dim = width // num_heads
    kernel = torch.softmax(kernel_logits.reshape(-1, kernel_size, 1), dim=1)
    x = value.transpose(1, 2).contiguous().unsqueeze(-1)
    x = torch.nn.functional.unfold(x, kernel_size=[kernel_size, 1], dilation=1,
                                   padding=[(kernel_size - 1) // 2, 0], stride=1)
    x = x.transpose(1, 2).reshape(batch, -1, width, kernel_size)
    x = torch.reshape(x, [-1, head_dim, kernel_size])
    x = torch.matmul(x, kernel)
    return torch.reshape(x, [batch, -1, width])


def random_args(batch=2, seq=7, heads=3, head_dim=4, kernel=5, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    value = torch.randn(batch, seq, heads * head_dim, generator=generator).to(dtype)
    logits = (torch.randn(batch, seq, heads * kernel, generator=generator) * 3).to(dtype)
    return value, logits, kernel, heads


@pytest.mark.parametrize("kernel, seq", [(1, 4), (3, 6), (5, 3), (9, 11), (9, 2)])
def test_reference_matches_contract_and_transformers(kernel, seq):
    args = random_args(seq=seq, kernel=kernel)
    ours = dynamic_conv_reference(*args)
    assert ours.shape == args[0].shape
    torch.testing.assert_close(ours, contract_formula(*args), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours, transformers_unfold(*args), atol=1e-6, rtol=1e-6)


def test_op_is_registered_and_equals_reference():
    args = random_args()
    op_out = torch.ops.convbert.dynamic_conv(*args)
    assert torch.equal(op_out, dynamic_conv_reference(*args))
    assert torch.equal(dynamic_conv(*args), op_out)


def test_float16():
    value, logits, kernel, heads = random_args(dtype=torch.float16)
    out = dynamic_conv(value, logits, kernel, heads)
    assert out.dtype == torch.float16
    expected = contract_formula(value.float(), logits.float(), kernel, heads)
    torch.testing.assert_close(out.float(), expected, atol=5e-3, rtol=5e-3)


def test_bad_arguments_are_explained():
    value, logits, kernel, heads = random_args()
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        dynamic_conv_reference(value, logits, 4, heads)
    with pytest.raises(ValueError, match="num_heads \\* kernel_size = 10, got 15"):
        dynamic_conv_reference(value, logits, kernel, 2)
    with pytest.raises(ValueError, match="share a dtype"):
        dynamic_conv_reference(value.double(), logits, kernel, heads)


def test_registration_is_idempotent():
    importlib.reload(dc)  # a second registration attempt must be a no-op
    args = random_args()
    assert torch.equal(torch.ops.convbert.dynamic_conv(*args), dc.dynamic_conv_reference(*args))
    code = (
        "import importlib, sys, reference_model, reference_model.dynamic_conv as d;"
        "importlib.reload(d); del sys.modules['reference_model'];"
        "import reference_model; print(reference_model.dynamic_conv.OP_NAME == 'dynamic_conv')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_export_with_dynamic_shapes_keeps_the_op():
    class Wrapper(torch.nn.Module):
        def forward(self, value, logits):
            return dynamic_conv(value, logits, 5, 3)

    value, logits, _, _ = random_args()
    batch, seq = torch.export.Dim("batch", max=32), torch.export.Dim("sequence", max=64)
    program = torch.export.export(Wrapper(), (value, logits),
                                  dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    targets = [node.target for node in program.graph.nodes if node.op == "call_function"]
    assert torch.ops.convbert.dynamic_conv.default in targets
    other = random_args(batch=3, seq=13, seed=1)
    torch.testing.assert_close(program.module()(other[0], other[1]), dynamic_conv_reference(*other))


def test_decomposition_replaces_the_op_with_plain_ops():
    class Wrapper(torch.nn.Module):
        def forward(self, value, logits):
            return dynamic_conv(value, logits, 5, 3)

    value, logits, _, _ = random_args()
    seq = torch.export.Dim("sequence", max=64)
    program = torch.export.export(Wrapper(), (value, logits), dynamic_shapes=({1: seq}, {1: seq}))
    program = program.run_decompositions(dc.decompositions())
    targets = [node.target for node in program.graph.nodes if node.op == "call_function"]
    assert torch.ops.convbert.dynamic_conv.default not in targets
    other = random_args(seq=19, seed=2)
    torch.testing.assert_close(program.module()(other[0], other[1]), dynamic_conv_reference(*other))
