"""Parity with transformers' ConvBERT for every head, exact padding, export tracing."""

from __future__ import annotations

import pytest
import torch

import reference_model as rm
from convbert_export.tasks import TASKS
from factories import TINY_CONFIGS, randomize, tiny_config
from reference_model_helpers import hf_twin, make_inputs

ATOL = 1e-5


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max())


@pytest.mark.parametrize("config_name", list(TINY_CONFIGS))
@pytest.mark.parametrize("architecture", list(rm.MODEL_CLASSES))
def test_parity_with_transformers(transformers, config_name, architecture):
    cls = rm.MODEL_CLASSES[architecture]
    config = tiny_config(config_name)
    model = randomize(cls(config), seed=list(TINY_CONFIGS).index(config_name))
    theirs = hf_twin(transformers, model)
    multiple_choice = cls is rm.ConvBertForMultipleChoice
    inputs = make_inputs(config, batch=3, seq=12, choices=2 if multiple_choice else None)
    assert inputs["attention_mask"].min() == 0  # right padding really present
    with torch.no_grad():
        ours = model(**inputs)
        expected = theirs(**inputs)
    spec = next(s for s in TASKS.values() if s.architecture == architecture)
    assert tuple(ours) == spec.output_names
    for name, value in ours.items():
        assert value.shape == expected[name].shape, name
        assert _max_diff(value, expected[name]) <= ATOL, (name, _max_diff(value, expected[name]))
        assert value.abs().max() > 0.1  # non-degenerate


def test_no_mask_and_no_token_types_match_transformers_defaults(transformers):
    config = tiny_config("base")
    model = randomize(rm.ConvBertForTokenClassification(config))
    theirs = hf_twin(transformers, model)
    ids = make_inputs(config)["input_ids"]
    with torch.no_grad():
        plain = model(ids)["logits"]
        ones = model(ids, torch.ones_like(ids), torch.zeros_like(ids))["logits"]
        expected = theirs(input_ids=ids).logits
    assert _max_diff(plain, expected) <= ATOL
    assert torch.equal(plain, ones)


def test_multiple_choice_pools_the_last_position_like_transformers(transformers):
    config = tiny_config("base", summary_use_proj=True, summary_activation="tanh")
    model = randomize(rm.ConvBertForMultipleChoice(config))
    assert "sequence_summary.summary.weight" in model.state_dict()
    assert "sequence_summary.summary.weight" not in rm.ConvBertForMultipleChoice(tiny_config("base")).state_dict()
    theirs = hf_twin(transformers, model)
    inputs = make_inputs(config, batch=2, choices=3)
    with torch.no_grad():
        assert _max_diff(model(**inputs)["logits"], theirs(**inputs).logits) <= ATOL
    # changing the last (padding) position's token changes the logits: it is the pooled one
    changed = {k: v.clone() for k, v in inputs.items()}
    changed["input_ids"][..., -1] = 5
    assert _max_diff(model(**changed)["logits"], model(**inputs)["logits"]) > 1e-4


def test_masked_lm_head_is_tied():
    model = rm.ConvBertForMaskedLM(tiny_config("grouped"))
    assert model.generator_lm_head.weight is model.convbert.embeddings.word_embeddings.weight
    untied = rm.ConvBertForMaskedLM(tiny_config("grouped", tie_word_embeddings=False))
    assert untied.generator_lm_head.weight is not untied.convbert.embeddings.word_embeddings.weight


def test_state_dict_keys_follow_transformers(transformers):
    config = tiny_config("grouped")
    for architecture, cls in rm.MODEL_CLASSES.items():
        ours = cls(config).state_dict()
        hf_config = transformers.ConvBertConfig.from_dict(config.to_dict())
        theirs = getattr(transformers, architecture)(hf_config).state_dict()
        theirs = {k: v for k, v in theirs.items() if not k.endswith(("position_ids", "token_type_ids"))}
        assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    keys = rm.ConvBertForMaskedLM(config).state_dict()
    assert "convbert.embeddings_project.weight" in keys
    assert "convbert.encoder.layer.0.intermediate.dense.weight" in keys
    assert keys["convbert.encoder.layer.0.intermediate.dense.weight"].shape == (2, 24, 32)


def test_model_stays_in_eval_mode():
    model = rm.ConvBertModel(tiny_config("base"))
    model.train()
    assert not model.training and not any(m.training for m in model.modules())


def _exact_padding_gap(model, config, real_len=7, padded_len=16, batch=2):
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(3, config.vocab_size, (batch, real_len), generator=generator)
    types = torch.zeros_like(ids)
    types[:, real_len // 2:] = 1
    alone = model(ids, torch.ones_like(ids), types)
    pad = torch.full((batch, padded_len - real_len), config.pad_token_id)
    padded_ids = torch.cat([ids, pad], dim=1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros_like(pad)], dim=1)
    padded_types = torch.cat([types, torch.zeros_like(pad)], dim=1)
    padded = model(padded_ids, mask, padded_types)
    gaps = {}
    for name, value in alone.items():
        other = padded[name]
        if value.dim() >= 2 and value.shape[1] == real_len and other.shape[1] == padded_len:
            other = other[:, :real_len]
        gaps[name] = _max_diff(value, other)
    return gaps


@pytest.mark.parametrize("config_name", ["base", "grouped"])
@pytest.mark.parametrize("architecture", ["ConvBertModel", "ConvBertForQuestionAnswering",
                                          "ConvBertForSequenceClassification"])
def test_exact_padding_reproduces_the_unpadded_text(config_name, architecture):
    config = tiny_config(config_name)
    model = randomize(rm.MODEL_CLASSES[architecture](config))
    assert model.exact_padding is False
    leaking = _exact_padding_gap(model, config)
    assert max(leaking.values()) > 1e-3, leaking  # transformers' semantics leak padding
    model.set_exact_padding(True)
    assert model.exact_padding is True
    exact = _exact_padding_gap(model, config)
    assert max(exact.values()) <= 1e-5, exact
    model.set_exact_padding(False)
    assert model.exact_padding is False


def test_exact_padding_changes_nothing_without_padding():
    config = tiny_config("base")
    model = randomize(rm.ConvBertModel(config))
    ids = make_inputs(config)["input_ids"]
    before = model(ids, torch.ones_like(ids))["last_hidden_state"]
    after = model.set_exact_padding(True)(ids, torch.ones_like(ids))["last_hidden_state"]
    assert torch.equal(before, after)


@pytest.mark.parametrize("architecture", ["ConvBertForMultipleChoice"])  # (B, C, S): the hardest shapes
def test_export_with_dynamic_batch_and_sequence(architecture):
    config = tiny_config("grouped")
    model = randomize(rm.MODEL_CLASSES[architecture](config)).set_exact_padding(True)
    multiple_choice = architecture == "ConvBertForMultipleChoice"
    inputs = make_inputs(config, batch=2, seq=10, choices=3 if multiple_choice else None)
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("sequence", max=64)
    axes = {0: batch, 1: torch.export.Dim("choices", max=8), 2: seq} if multiple_choice else {0: batch, 1: seq}
    program = torch.export.export(model, (), kwargs=inputs, dynamic_shapes={k: axes for k in inputs})
    targets = [n.target for n in program.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.convbert.dynamic_conv.default) == config.num_hidden_layers
    other = make_inputs(config, batch=3, seq=17, choices=2 if multiple_choice else None, seed=1)
    got, expected = program.module()(**other), model(**other)
    for name in expected:
        assert _max_diff(got[name], expected[name]) <= 1e-6


def test_float16_forward_is_close_to_float32():
    config = tiny_config("base")
    model = randomize(rm.ConvBertModel(config), std=0.1)
    inputs = make_inputs(config)
    expected = model(**inputs)["last_hidden_state"]
    got = model.half()(**inputs)["last_hidden_state"]
    assert got.dtype == torch.float16
    assert _max_diff(got.float(), expected) < 0.05
