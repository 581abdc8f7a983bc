"""The task's input builder (convbert_export/inputs.py): one padding and token-type rule for
every synthetic feed, the task's shape, and one encoder for mixed singles and pairs."""

from __future__ import annotations

import numpy as np
import pytest

from convbert_export.inputs import ModelDims, encode_pairs
from convbert_export.tasks import get_task
from convbert_export.tokenization import Tokenizer, demo_vocab_dir

DIMS = ModelDims(vocab_size=50, max_length=16, type_vocab_size=2, pad_token_id=0)


def _check_rule(feeds: dict) -> None:
    """Right padding with the pad id; type 1 from max(length // 2, 1) on, on real tokens only."""
    ids, mask, types = (feeds[k].reshape(-1, feeds[k].shape[-1]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    for row_ids, row_mask, row_types in zip(ids, mask, types):
        length = int(row_mask.sum())
        assert length >= 1 and row_mask[:length].all() and not row_mask[length:].any()
        assert (row_ids[length:] == DIMS.pad_token_id).all()
        split = max(length // 2, 1)
        assert (row_types[:split] == 0).all() and (row_types[split:length] == 1).all() and (row_types[length:] == 0).all()


@pytest.mark.parametrize("task", ["text-classification", "multiple-choice"])
def test_every_synthetic_feed_follows_the_task_shape_and_one_padding_rule(task):
    inputs = get_task(task).model_inputs()
    mc = task == "multiple-choice"
    grid = list(inputs.random_grid(DIMS, (1, 3), (5, 0, 99), (2,) if mc else (None,), seed=0))
    assert [name for name, _ in grid] == [f"random b={b}" + (" c=2" if mc else "") + f" s={s}" for b in (1, 3) for s in (5, 16)]
    for (name, feeds), again in zip(grid, inputs.random_grid(DIMS, (1, 3), (5, 0, 99), (2,) if mc else (None,), seed=0)):
        assert all(np.array_equal(feeds[k], again[1][k]) for k in feeds), name  # seeded
        batch, seq = int(name.split("b=")[1].split()[0]), int(name.split("s=")[1])
        assert feeds["input_ids"].shape == ((batch, 2, seq) if mc else (batch, seq))
        _check_rule(feeds)
    sample = inputs.sample(DIMS)
    assert sample["input_ids"].shape == ((2, 3, 8) if mc else (2, 8))
    assert sample["attention_mask"].reshape(-1, 8)[-1].sum() == 4 and sample["attention_mask"].reshape(-1, 8)[:-1].all()
    _check_rule(sample)
    bench = inputs.benchmark(DIMS, 2, 40, seed=0)
    assert bench["input_ids"].shape == ((2, 2, 16) if mc else (2, 16)) and bench["attention_mask"].all()
    _check_rule(bench)
    alone, padded = inputs.padded_pair(DIMS, 5, 15)
    assert np.array_equal(padded["input_ids"][..., :5], alone["input_ids"]) and padded["attention_mask"].sum() == 5
    assert not padded["token_type_ids"].any() and alone["input_ids"].shape == ((1, 1, 5) if mc else (1, 5))


def test_mixed_singles_and_pairs_encode_as_two_groups_in_one_place():
    tokenizer = Tokenizer.from_pretrained(demo_vocab_dir())
    pairs = [("a good day", None), ("is it", "yes it is"), ("rain", None)]
    groups = encode_pairs(tokenizer, pairs, padding="longest")
    assert [(kind, rows) for kind, rows, _ in groups] == [("singles", [0, 2]), ("pairs", [1])]
    singles, doubles = groups[0][2], groups[1][2]
    assert np.array_equal(singles["input_ids"], tokenizer(["a good day", "rain"], padding="longest")["input_ids"])
    assert np.array_equal(doubles["token_type_ids"], tokenizer(["is it"], ["yes it is"])["token_type_ids"])
    assert [kind for kind, _, _ in encode_pairs(tokenizer, pairs[:1])] == ["singles"]
