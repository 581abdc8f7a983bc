"""Exactness (issue 11, items 6, 8, 9): multiple choice pools each choice's last real token in
exact mode; the manifest's pad id is the tokenizer's; the tokenizer's max length is capped."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import reference_model
from factories import seeded_model
from reference_model.presets import demo_vocab_size


def _tiny(cls_name: str, **changes):
    config = reference_model.ConvBertConfig(**{
        **dict(vocab_size=demo_vocab_size(), embedding_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=48, conv_kernel_size=5, max_position_embeddings=40, pad_token_id=0,
               architectures=[cls_name]), **changes})
    return seeded_model(config, seed=3)


@pytest.fixture(scope="module")
def mc_exact(tmp_path_factory):
    import convbert_export
    from convbert_export.validate import ValidationSettings

    model = _tiny("ConvBertForMultipleChoice")
    out = tmp_path_factory.mktemp("mc") / "exact"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo vocabulary for a model without tokenizer files
        result = convbert_export.export(model, "multiple-choice", out, padding="exact",
                                        validation=ValidationSettings(batches=(1, 2), sequences=(7, 0), num_choices=(3,)))
    return model, out, result


def test_exact_multiple_choice_pads_like_each_choice_alone(mc_exact):
    """Fed padded choices (as Optimum's ORTModelForMultipleChoice feeds them), the ONNX model
    gives each choice's logit as when that choice runs alone, unpadded, within 1e-5."""
    import onnxruntime as ort

    model, out, _ = mc_exact
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    lengths = [[5, 12, 9], [17, 3, 17]]  # (B=2, C=3): padded to 20
    total = 20
    ids = np.zeros((2, 3, total), np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for b, row in enumerate(lengths):
        for c, n in enumerate(row):
            ids[b, c, :n] = rng.integers(5, 96, n)
            mask[b, c, :n] = 1
            types[b, c, n // 2 : n] = 1
    padded = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    worst = 0.0
    for b, row in enumerate(lengths):
        for c, n in enumerate(row):
            alone_feeds = {"input_ids": ids[b:b + 1, c:c + 1, :n], "attention_mask": mask[b:b + 1, c:c + 1, :n],
                           "token_type_ids": types[b:b + 1, c:c + 1, :n]}
            alone = session.run(None, alone_feeds)[0][0, 0]
            with torch.no_grad():  # and the reference with transformers' semantics, each choice alone
                model.set_exact_padding(False)
                ref = model(**{k: torch.from_numpy(v) for k, v in alone_feeds.items()})["logits"][0, 0].item()
                model.set_exact_padding(True)
            worst = max(worst, abs(padded[b, c] - alone), abs(padded[b, c] - ref))
    assert worst <= 1e-5, worst


def test_exact_multiple_choice_validation_measures_padding(mc_exact):
    _, out, result = mc_exact
    report = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    assert report["passed"], report["failures"]
    effect = report["padding_effect"]
    assert effect["export_max_abs_diff"] <= 1e-5 and "last position" not in effect["note"]
    assert effect["transformers_semantics_max_abs_diff"] > 1e-3  # what the leak costs


def test_transformers_mode_keeps_last_position_pooling():
    """--padding transformers keeps transformers' pooling: a padded choice reads the last
    (padding) position, so it differs from the choice alone."""
    model = _tiny("ConvBertForMultipleChoice")
    ids = torch.randint(5, 96, (1, 1, 12))
    mask = torch.ones_like(ids)
    padded_ids = torch.cat([ids, torch.zeros((1, 1, 6), dtype=torch.long)], -1)
    padded_mask = torch.cat([mask, torch.zeros((1, 1, 6), dtype=torch.long)], -1)
    with torch.no_grad():
        alone = model(ids, mask)["logits"]
        leaky = model(padded_ids, padded_mask)["logits"]
        model.set_exact_padding(True)
        exact = model(padded_ids, padded_mask)["logits"]
    assert (alone - leaky).abs().max() > 1e-3
    assert (alone - exact).abs().max() <= 1e-5


# ---- item 8: the manifest records the id the tokenizer pads with --------------------------
def test_manifest_pad_id_is_the_tokenizers(tmp_path):
    import convbert_export
    from convbert_export.tokenization import demo_vocab_dir

    model = _tiny("ConvBertForSequenceClassification", pad_token_id=1)  # [UNK] in the demo vocab
    with pytest.warns(UserWarning, match="pad_token_id 1 differs from the tokenizer's pad token id 0"):
        convbert_export.export(model, "text-classification", tmp_path / "clf", validate=False,
                               tokenizer_dir=demo_vocab_dir(), padding="transformers")
    manifest = json.loads((tmp_path / "clf" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["pad_token_id"] == 0


# ---- item 9: tokenizer_config's model_max_length is capped at the model's positions --------
def test_exported_tokenizer_max_length_is_capped(tmp_path, transformers):
    import onnxruntime as ort

    from factories import demo_export

    export = demo_export("text-classification")
    config = json.loads((export / "tokenizer_config.json").read_text(encoding="utf-8"))
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    assert config["model_max_length"] == manifest["model"]["max_position_embeddings"] == 128
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(export))
    batch = tokenizer(["word " * 400], truncation=True, return_tensors="np")
    assert batch["input_ids"].shape[1] == 128
    session = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {k: v.astype(np.int64) for k, v in batch.items()})
    assert np.isfinite(logits).all()
