"""ConvBertConfig: transformers' defaults and label semantics, JSON round trips, refused values."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from reference_model.errors import ConfigError
from reference_model import ConvBertConfig
from reference_model.configuration import SUPPORTED_ACTIVATIONS
from reference_model.modeling import ACTIVATIONS


def test_defaults_match_transformers(transformers):
    ours = ConvBertConfig()
    theirs = transformers.ConvBertConfig()
    for f in dataclasses.fields(ConvBertConfig):
        if f.name.startswith("summary_") or f.name in ("architectures",):
            continue
        assert getattr(ours, f.name) == getattr(theirs, f.name), f.name
    assert ours.num_labels == 2
    assert ours.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert ours.label2id == {"LABEL_0": 0, "LABEL_1": 1}


def test_to_dict_loads_in_transformers_with_same_values(transformers, tmp_path):
    config = ConvBertConfig(hidden_size=64, embedding_size=32, num_attention_heads=4,
                            id2label={0: "NEG", 1: "NEU", 2: "POS"}, architectures=["ConvBertForSequenceClassification"])
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "convbert"
    assert data["id2label"] == {"0": "NEG", "1": "NEU", "2": "POS"}
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(theirs).__name__ == "ConvBertConfig"
    assert theirs.num_labels == 3 and theirs.id2label == {0: "NEG", 1: "NEU", 2: "POS"}
    assert theirs.hidden_size == 64 and theirs.embedding_size == 32
    assert theirs.architectures == ["ConvBertForSequenceClassification"]
    # and back, through transformers' own writer
    theirs.save_pretrained(tmp_path / "hf")
    again = ConvBertConfig.from_pretrained(tmp_path / "hf")
    assert again.id2label == config.id2label and again.hidden_size == 64
    assert again.label2id == {"NEG": 0, "NEU": 1, "POS": 2}


def test_from_dict_ignores_unknown_keys_and_reads_string_label_ids():
    config = ConvBertConfig.from_dict(
        {"model_type": "convbert", "transformers_version": "4.0", "_name_or_path": "x", "hidden_size": 96,
         "num_attention_heads": 6, "id2label": {"1": "B", "0": "A"}}
    )
    assert config.hidden_size == 96
    assert config.id2label == {0: "A", 1: "B"} and config.num_labels == 2


def test_num_labels_without_id2label_makes_default_names():
    config = ConvBertConfig.from_dict({"num_labels": 4})
    assert config.id2label == {i: f"LABEL_{i}" for i in range(4)}
    assert config.to_dict()["id2label"] == {str(i): f"LABEL_{i}" for i in range(4)}


@pytest.mark.parametrize(
    "changes, field, expected_fragment",
    [
        ({"hidden_size": 100, "num_attention_heads": 12}, "hidden_size", "multiple of 2 * 6"),
        ({"conv_kernel_size": 8}, "conv_kernel_size", "odd"),
        ({"conv_kernel_size": 0}, "conv_kernel_size", "positive integer"),
        ({"num_groups": 5}, "num_groups", "divisor of hidden_size"),
        ({"num_groups": 3, "intermediate_size": 3070, "hidden_size": 768}, "num_groups", "divisor of intermediate_size"),
        ({"vocab_size": 0}, "vocab_size", "positive integer"),
        ({"num_hidden_layers": -1}, "num_hidden_layers", "positive integer"),
        ({"hidden_size": "768"}, "hidden_size", "positive integer"),
        ({"hidden_act": "gelu_magic"}, "hidden_act", "gelu_new"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob", "probability"),
        ({"layer_norm_eps": 0}, "layer_norm_eps", "positive number"),
        ({"pad_token_id": 30522}, "pad_token_id", "0..30521"),
        ({"summary_type": "attn"}, "summary_type", "last"),
        ({"id2label": {"0": "A"}, "num_labels": 3}, "num_labels", "expected 1"),
        ({"id2label": {"0": "A", "2": "B"}}, "id2label", "0..1"),
    ],
)
def test_impossible_values_name_the_field(changes, field, expected_fragment):
    with pytest.raises(ConfigError) as info:
        ConvBertConfig.from_dict(changes)
    message = str(info.value)
    assert repr(field) in message
    assert expected_fragment in message
    assert "got" in message


@pytest.mark.parametrize("key", ["auto_map", "trust_remote_code"])
def test_remote_code_is_refused(tmp_path, key):
    value = {"AutoModel": "modeling_evil.Model"} if key == "auto_map" else True
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "convbert", key: value}))
    with pytest.raises(ConfigError, match="remote code is not supported") as info:
        ConvBertConfig.from_pretrained(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_other_model_type_and_bad_json_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="expected 'convbert', got 'bert'"):
        ConvBertConfig.from_dict({"model_type": "bert"})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ConvBertConfig.from_pretrained(tmp_path)


def test_single_head_rule():
    assert ConvBertConfig(num_attention_heads=1, head_ratio=2, hidden_size=24, embedding_size=24).effective_num_heads == 1
    assert ConvBertConfig().effective_num_heads == 6


def test_activation_table_matches_transformers(transformers):
    from transformers.activations import ACT2FN

    assert set(ACTIVATIONS) == set(SUPPORTED_ACTIVATIONS)
    x = torch.linspace(-12, 12, 2001)
    # transformers 4.x has no "hardswish" in ACT2FN (5.x added it): there torch's own is the oracle
    fallback = {"hardswish": torch.nn.functional.hardswish}
    for name, fn in ACTIVATIONS.items():
        expected = ACT2FN[name](x) if name in ACT2FN else fallback[name](x)
        assert torch.allclose(fn(x), expected, atol=1e-6, rtol=0), name
    # gelu is the exact erf form, gelu_new the tanh approximation: they really differ
    assert not math.isclose(float(ACTIVATIONS["gelu"](torch.tensor(1.0))),
                            float(ACTIVATIONS["gelu_new"](torch.tensor(1.0))), abs_tol=1e-6)
