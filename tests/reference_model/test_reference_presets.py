"""Presets: published shapes, seeded weights, the demo model, unknown names."""

from __future__ import annotations

import pytest
import torch

import reference_model as rm
from reference_model.errors import UnknownNameError
from convbert_export.tasks import TASKS
from convbert_export.tokenization import demo_vocab_dir
from reference_model.presets import DEMO_VOCAB_SIZE, preset_config


@pytest.mark.parametrize(
    "name, embedding, hidden, heads, intermediate, groups",
    [("conv-bert-base", 768, 768, 12, 3072, 1), ("conv-bert-medium-small", 128, 384, 8, 1536, 2),
     ("conv-bert-small", 128, 256, 4, 1024, 1)],
)
def test_published_shapes(name, embedding, hidden, heads, intermediate, groups):
    config = preset_config(name)
    assert (config.embedding_size, config.hidden_size, config.num_attention_heads,
            config.intermediate_size, config.num_groups) == (embedding, hidden, heads, intermediate, groups)
    assert (config.vocab_size, config.max_position_embeddings, config.num_hidden_layers) == (30522, 512, 12)
    assert (config.pad_token_id, config.type_vocab_size, config.conv_kernel_size) == (0, 2, 9)


def test_conv_bert_small_parameter_count():
    model = rm.from_preset("conv-bert-small", "feature-extraction")
    params = sum(p.numel() for p in model.parameters())
    assert 13_000_000 < params < 14_500_000  # YituTech/conv-bert-small is ~14M parameters


@pytest.mark.parametrize("task", list(TASKS))
def test_demo_for_every_task(task):
    model = rm.from_preset("demo", task, seed=1)
    assert type(model).__name__ == TASKS[task].architecture
    assert model.config.architectures == [TASKS[task].architecture]
    with open(f"{demo_vocab_dir()}/vocab.txt", encoding="utf-8") as handle:
        vocab = sum(1 for _ in handle)  # the shipped file, which DEMO_VOCAB_SIZE must match
    assert vocab == DEMO_VOCAB_SIZE
    assert model.config.vocab_size == vocab and model.config.max_position_embeddings == 128
    shape = (2, 3, 9) if TASKS[task].multiple_choice else (2, 9)
    ids = torch.randint(1, model.config.vocab_size, shape, generator=torch.Generator().manual_seed(0))
    outputs = model(ids)
    assert tuple(outputs) == TASKS[task].output_names
    for value in outputs.values():
        assert torch.isfinite(value).all() and value.std() > 0


def test_seeded_weights_are_reproducible_and_initialized_like_transformers():
    a = rm.from_preset("demo", "fill-mask", seed=0)
    b = rm.from_preset("demo", "fill-mask", seed=0)
    c = rm.from_preset("demo", "fill-mask", seed=1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    word = a.convbert.embeddings.word_embeddings.weight
    assert not torch.equal(word, c.convbert.embeddings.word_embeddings.weight)
    assert abs(float(word.std()) - 0.02) < 0.002
    assert torch.equal(word[0], torch.zeros_like(word[0]))  # pad row, as transformers zeroes it
    layer = a.convbert.encoder.layer[0]
    assert torch.equal(layer.output.LayerNorm.weight, torch.ones_like(layer.output.LayerNorm.weight))
    assert not layer.attention.self.query.bias.any()
    assert a.generator_lm_head.weight is word


def test_token_classification_labels():
    model = rm.from_preset("demo", "token-classification")
    assert model.config.id2label == {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
    assert model.classifier.out_features == 5
    assert rm.from_preset("demo", "text-classification").config.id2label == {0: "LABEL_0", 1: "LABEL_1"}


def test_unknown_names_list_what_exists():
    with pytest.raises(UnknownNameError, match="unknown preset 'conv-bert-huge'.*conv-bert-base.*demo"):
        rm.from_preset("conv-bert-huge", "fill-mask")
    with pytest.raises(UnknownNameError, match="unknown task"):
        rm.from_preset("demo", "translation")
    assert set(rm.PRESETS) == {"conv-bert-base", "conv-bert-medium-small", "conv-bert-small", "demo"}
