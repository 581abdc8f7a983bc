"""Checkpoint reading and writing: transformers round trips, formats, and every error message."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import reference_model as rm
from reference_model.errors import CheckpointError, ConfigError, UnknownNameError
from factories import randomize, tiny_config
from reference_model_helpers import hf_twin, make_inputs


def _same_outputs(a, b, inputs, atol=1e-6):
    with torch.no_grad():
        out_a, out_b = a(**inputs), b(**inputs)
    for name in out_a:
        expected = out_b[name] if isinstance(out_b, dict) else getattr(out_b, name)
        assert float((out_a[name] - expected).abs().max()) <= atol, name


@pytest.mark.parametrize("architecture", ["ConvBertForMaskedLM", "ConvBertForSequenceClassification",
                                          "ConvBertForMultipleChoice"])
def test_transformers_to_ours_and_back(transformers, tmp_path, architecture):
    config = tiny_config("grouped")
    hf_config = transformers.ConvBertConfig.from_dict(config.to_dict())
    torch.manual_seed(0)
    theirs = getattr(transformers, architecture)(hf_config).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = rm.load(tmp_path / "hf")
    assert type(ours).__name__ == architecture
    inputs = make_inputs(config, choices=2 if "Multiple" in architecture else None)
    _same_outputs(ours, theirs, inputs, atol=1e-5)
    ours.save_pretrained(tmp_path / "ours")
    again, info = getattr(transformers, architecture).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    _same_outputs(ours, again.eval(), inputs, atol=1e-5)


def test_ours_save_stores_tied_weight_once_and_writes_architectures(tmp_path):
    model = randomize(rm.ConvBertForMaskedLM(tiny_config("base")))
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    assert "generator_lm_head.weight" not in tensors and "generator_lm_head.bias" in tensors
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["ConvBertForMaskedLM"]
    loaded = rm.ConvBertForMaskedLM.from_pretrained(tmp_path)
    assert loaded.generator_lm_head.weight is loaded.convbert.embeddings.word_embeddings.weight
    _same_outputs(loaded, model, make_inputs(model.config), atol=0)


def test_head_checkpoint_loads_as_feature_extraction(tmp_path):
    model = randomize(rm.ConvBertForQuestionAnswering(tiny_config("base")))
    model.save_pretrained(tmp_path)
    base = rm.load(tmp_path, task="feature-extraction")
    assert type(base) is rm.ConvBertModel
    inputs = make_inputs(model.config)
    expected = model.convbert(**inputs)["last_hidden_state"]
    assert torch.equal(base(**inputs)["last_hidden_state"], expected)


def test_base_checkpoint_loads_into_the_base_of_a_head(tmp_path):
    base = randomize(rm.ConvBertModel(tiny_config("base")))
    base.save_pretrained(tmp_path)
    # a head without its own weights is an error that lists them ...
    with pytest.raises(CheckpointError) as info:
        rm.load(tmp_path, task="token-classification")
    message = str(info.value)
    assert "missing key classifier.weight" in message and "missing key classifier.bias" in message
    assert "convbert.embeddings" not in message  # the base part matched through the prefix
    # ... and once the head's weights are added to the base-only checkpoint, it loads
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["classifier.weight"] = torch.randn(2, 32)
    tensors["classifier.bias"] = torch.randn(2)
    prefixed = {("convbert." + k if not k.startswith("classifier") else k): v for k, v in tensors.items()}
    save_file(prefixed, tmp_path / "model.safetensors", metadata={"format": "pt"})
    head = rm.load(tmp_path, task="token-classification")
    assert torch.equal(head.classifier.bias, tensors["classifier.bias"])
    inputs = make_inputs(base.config)
    assert torch.equal(head.convbert(**inputs)["last_hidden_state"], base(**inputs)["last_hidden_state"])


def test_other_head_is_refused_naming_the_heads(tmp_path):
    randomize(rm.ConvBertForMaskedLM(tiny_config("base"))).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError) as info:
        rm.load(tmp_path, task="text-classification")
    message = str(info.value)
    assert "does not match ConvBertForSequenceClassification" in message
    assert "The checkpoint holds: ConvBertForMaskedLM" in message
    assert "missing key classifier.out_proj.weight (model shape (2, 32))" in message
    assert "unexpected key generator_lm_head.bias in model.safetensors (shape (99,))" in message


def test_every_key_problem_is_reported_in_one_error(tmp_path):
    model = randomize(rm.ConvBertForSequenceClassification(tiny_config("base")))
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["convbert.encoder.layer.1.output.dense.bias"]
    tensors["convbert.encoder.layer.9.extra.weight"] = torch.zeros(3)
    tensors["classifier.out_proj.weight"] = torch.zeros(5, 32)
    tensors["convbert.embeddings.position_ids"] = torch.arange(64)[None]  # old buffer: ignored
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as info:
        rm.load(tmp_path)
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "model.safetensors" in message
    assert "missing key convbert.encoder.layer.1.output.dense.bias (model shape (32,))" in message
    assert "unexpected key convbert.encoder.layer.9.extra.weight in model.safetensors (shape (3,))" in message
    assert ("mis-shaped key classifier.out_proj.weight in model.safetensors: checkpoint shape (5, 32), "
            "model shape (2, 32)") in message
    assert "position_ids" not in message


def test_pytorch_bin_is_read_with_weights_only(tmp_path):
    model = randomize(rm.ConvBertForTokenClassification(tiny_config("single_head")))
    model.config.replace(architectures=["ConvBertForTokenClassification"]).save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = rm.load(tmp_path)
    _same_outputs(loaded, model, make_inputs(model.config), atol=0)
    # a pickle that is not plain tensors is refused, and nothing in it runs
    torch.save({"x": torch.zeros(1), "payload": _Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        rm.load(tmp_path)
    # safetensors wins when both exist
    model.save_pretrained(tmp_path)
    assert type(rm.load(tmp_path)) is rm.ConvBertForTokenClassification


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_sharded_safetensors_and_sharded_bin(tmp_path):
    model = randomize(rm.ConvBertForQuestionAnswering(tiny_config("grouped")))
    model.config.replace(architectures=["ConvBertForQuestionAnswering"]).save_pretrained(tmp_path)
    state = model.state_dict()
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    weight_map = {}
    for name, part in halves.items():
        save_file({k: state[k].contiguous() for k in part}, tmp_path / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = rm.load(tmp_path)
    _same_outputs(loaded, model, make_inputs(model.config), atol=0)
    # a missing shard is named
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors"):
        rm.load(tmp_path)
    # sharded .bin
    for p in tmp_path.glob("model*"):
        p.unlink()
    bin_map = {}
    for i, part in enumerate(halves.values()):
        name = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({k: state[k] for k in part}, tmp_path / name)
        bin_map.update({k: name for k in part})
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": bin_map}))
    _same_outputs(rm.load(tmp_path), model, make_inputs(model.config), atol=0)


def test_missing_directory_config_and_weights(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint directory not found.*no such path"):
        rm.load(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="has no config.json"):
        rm.load(tmp_path)
    tiny_config("base").save_pretrained(tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckpointError, match="no weights in checkpoint.*model.safetensors.*got \\['config.json', 'notes.txt'\\]"):
        rm.load(tmp_path)


def test_refused_config_and_unknown_task(tmp_path):
    tiny_config("base").save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(ConfigError, match="remote code is not supported"):
        rm.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**data, "conv_kernel_size": 4}))
    with pytest.raises(ConfigError, match="'conv_kernel_size'.*got 4"):
        rm.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(UnknownNameError, match="unknown task 'summarization'.*fill-mask"):
        rm.load(tmp_path, task="summarization")


def test_from_pretrained_on_each_class_and_hf_twin_after_loading(transformers, tmp_path):
    model = randomize(rm.ConvBertForSequenceClassification(tiny_config("single_head", num_labels=3)))
    model.save_pretrained(tmp_path)
    loaded = rm.ConvBertForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.config.num_labels == 3
    inputs = make_inputs(model.config)
    _same_outputs(loaded, hf_twin(transformers, model), inputs, atol=1e-5)
