"""Batch invariance, the micro-batcher under threads, bad input, and the predict command."""

from __future__ import annotations

import json
import random
import threading

import numpy as np
import pytest

from convbert_export.batching import plan_batches
from convbert_export.errors import InvalidInputError, QueueFullError, RequestError

from .conftest import VOCAB, assert_close_nested, pipeline_for


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [w for w in VOCAB[5:] if not w.startswith("##") and w.isalpha()]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(n)]


@pytest.fixture(scope="module")
def features(artifacts):
    with pipeline_for(artifacts, "feature-extraction", batch_size=8) as pipe:
        yield pipe


def test_plan_batches_groups_equal_lengths_unless_exact():
    lengths = [5, 3, 5, 7, 3, 5]
    leaking = plan_batches(lengths, 2, exact=False)
    assert sorted(i for b in leaking for i in b) == list(range(6))
    assert all(len({lengths[i] for i in b}) == 1 and len(b) <= 2 for b in leaking)
    exact = plan_batches(lengths, 4, exact=True)
    assert [len(b) for b in exact] == [4, 2] and sorted(i for b in exact for i in b) == list(range(6))


def test_batch_invariance(features):
    texts = _texts(24)
    solo = [features(t, return_tensors=True) for t in texts]
    for batch_size in (3, 8):
        features.batch_size = batch_size
        together = features(texts, return_tensors=True)
        for a, b in zip(solo, together):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    features.batch_size = 8


def test_microbatcher_threads(artifacts):
    from convbert_export.runtime.batcher import MicroBatcher

    with pipeline_for(artifacts, "text-classification", batch_size=8) as pipe:
        texts = _texts(40, seed=1)
        solo = {t: pipe(t, top_k=None) for t in texts}
        results: dict[tuple[int, int], object] = {}
        with MicroBatcher(pipe, max_batch_size=8, max_delay_ms=2, max_queue=1000) as batcher:
            def worker(k: int):
                for m, text in enumerate(texts[k::4]):
                    results[(k, m)] = (text, batcher(text, top_k=None))

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            bad = batcher.submit("hello world", top_k=None)
            with pytest.raises(InvalidInputError):
                batcher.submit("   ")
            assert bad.result()[0]["label"] in {"NEGATIVE", "POSITIVE", "NEUTRAL"}
        assert len(results) == len(texts)
        for text, result in results.values():
            assert_close_nested(result, solo[text])


def test_microbatcher_groups_by_unhashable_parameters(artifacts):
    """fill-mask targets are a list: requests still group by their parameters and all finish."""
    from convbert_export.runtime.batcher import MicroBatcher

    with pipeline_for(artifacts, "fill-mask", batch_size=4) as pipe:
        mask = pipe.tokenizer.mask_token
        text = f"the {mask} runs"
        with MicroBatcher(pipe, max_batch_size=4, max_delay_ms=20) as batcher:
            a = batcher.submit(text, targets=["dog", "cat"])
            b = batcher.submit(text, top_k=2)
            c = batcher.submit(text, targets=["dog", "cat"])
            got = [f.result(timeout=30) for f in (a, b, c)]
        assert got[0] == got[2] and {r["token_str"] for r in got[0]} == {"dog", "cat"}
        assert len(got[1]) == 2
        assert_close_nested(got[0], pipe(text, targets=["dog", "cat"]))


def test_microbatcher_full_queue_rejects(artifacts):
    from convbert_export.runtime.batcher import MicroBatcher

    class Slow:
        """A pipeline stand-in that blocks, so the queue fills."""
        gate = threading.Event()

        def check_input(self, item):
            return item

        def run_many(self, items, **params):
            self.gate.wait(5)
            return list(items)

    slow = Slow()
    batcher = MicroBatcher(slow, max_batch_size=1, max_delay_ms=0, max_queue=2)
    futures = [batcher.submit("a")]
    import time
    time.sleep(0.05)  # the worker takes the first request and blocks
    futures += [batcher.submit("b"), batcher.submit("c")]
    with pytest.raises(QueueFullError):
        batcher.submit("d")
    slow.gate.set()
    batcher.close()
    assert [f.result() for f in futures] == ["a", "b", "c"]  # close drains in-flight work


@pytest.mark.parametrize("bad", [None, 42, b"bytes", "", "   \n\t"])
def test_bad_texts(features, bad):
    with pytest.raises(InvalidInputError):
        features(bad)


def test_bad_input_cases(features, artifacts):
    with pytest.raises(InvalidInputError, match="empty input list"):
        features([])
    features.max_input_chars = 1000
    with pytest.raises(InvalidInputError, match="max_input_chars"):
        features("a " * 3_000_000)  # multi-MB text rejected before tokenizing
    features.max_input_chars = 1_000_000
    with pytest.warns(RuntimeWarning, match="truncated"):
        out = features("dog " * 200, return_tensors=True)
    assert out.shape[1] == 64
    with pytest.warns(RuntimeWarning, match="surrogates"):
        out = features("dog \ud800 cat", return_tensors=True)
    results = features.run_many(["hello world", None, "dog"])
    assert isinstance(results[1], InvalidInputError) and not isinstance(results[0], Exception)
    with pytest.raises(InvalidInputError, match="no mask token"):
        with pipeline_for(artifacts, "fill-mask") as fill:
            fill("no mask here")


def test_runner_rejects_bad_tensors(features):
    runner = features.runner
    ok = np.array([[2, 10, 3]], dtype=np.int64)
    feeds = {"input_ids": ok, "attention_mask": np.ones_like(ok), "token_type_ids": np.zeros_like(ok)}
    assert runner.run(feeds)["last_hidden_state"].shape == (1, 3, 32)
    cases = {
        "vocab_size": {**feeds, "input_ids": ok + 1000},
        "type_vocab_size": {**feeds, "token_type_ids": np.full_like(ok, 2)},
        "dtype": {**feeds, "input_ids": ok.astype(np.int32)},
        "rank": {**feeds, "input_ids": ok[0]},
        "same shape": {**feeds, "attention_mask": np.ones((1, 4), np.int64)},
        "all zero": {**feeds, "attention_mask": np.zeros_like(ok)},
        "missing": {"input_ids": ok},
        "max_position_embeddings": {k: np.ones((1, 65), np.int64) for k in feeds},
    }
    for expected, bad in cases.items():
        with pytest.raises(InvalidInputError, match=expected):
            runner.run(bad)


def test_nan_output_fails_that_request_only(features):
    runner = features.runner
    original = runner.run_impl

    def poisoned(feeds):
        out = original(feeds)
        rows = feeds["input_ids"].shape[1] == 5  # poison only the batch of 5-token texts (CLS + 3 + SEP)
        if rows:
            out["last_hidden_state"] = out["last_hidden_state"].copy()
            out["last_hidden_state"][0, 0, 0] = np.nan
        return out

    runner.run_impl = poisoned
    try:
        results = features.run_many(["dog cat", "hello world good", "dog"])
    finally:
        runner.run_impl = original
    assert isinstance(results[1], RequestError)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)


def test_predict_cli(artifacts, tmp_path):
    from click.testing import CliRunner

    from convbert_export.commands.predict import command

    _, _, export = artifacts.get("text-classification")
    lines = [json.dumps({"text": "hello world"}).encode(), b"{not json", b'{"text": "caf\xff"}',
             json.dumps({"text": ""}).encode(), json.dumps({"text": "dog ran", "text_pair": "cat"}).encode()]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    target = tmp_path / "out.jsonl"
    result = CliRunner().invoke(command, [str(export), "--input", str(source), "--output", str(target),
                                          "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    assert "result" in rows[0] and "result" in rows[4]
    assert all("error" in rows[i] for i in (1, 2, 3))
    with pipeline_for(artifacts, "text-classification") as pipe:
        assert_close_nested(rows[0]["result"], pipe(["hello world"])[0])


def test_predict_cli_reads_stdin_and_writes_output_atomically(artifacts, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import convbert_export.runtime.pipeline as pipeline_module
    from convbert_export.commands.predict import command

    _, _, export = artifacts.get("text-classification")
    target = tmp_path / "out.jsonl"
    result = CliRunner().invoke(command, [str(export), "--input", "-", "--output", str(target), "--quiet"],
                                input='{"text": "hello world"}\n{"text": "dog ran"}\n')
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["line"] for line in target.read_text().splitlines()] == [1, 2]

    # a run that dies half-way leaves the previous output untouched and no temporary file
    def boom(self, items, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline_module.Pipeline, "run_many", boom)
    result = CliRunner().invoke(command, [str(export), "--text", "x", "--output", str(target), "--quiet"])
    assert result.exit_code != 0
    assert [json.loads(line)["line"] for line in target.read_text().splitlines()] == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


@pytest.fixture(scope="module")
def exact_export(tmp_path_factory):
    """A tiny reference model exported by the project's exporter with padding "exact"."""
    import convbert_export
    import reference_model
    from factories import seeded_model

    from .conftest import save_tokenizer

    config = reference_model.ConvBertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, embedding_size=32, conv_kernel_size=5,
        head_ratio=2, type_vocab_size=2, pad_token_id=0, architectures=["ConvBertModel"],
    )
    model = seeded_model(config)
    tokenizer_dir = tmp_path_factory.mktemp("tok")
    save_tokenizer(tokenizer_dir)
    out = tmp_path_factory.mktemp("exact") / "export"
    convbert_export.export(model, "feature-extraction", out, padding="exact", validate=False,
                           tokenizer_dir=tokenizer_dir)
    return out


def test_exact_export_batches_mixed_lengths_invariantly(exact_export):
    from convbert_export.runtime.ort import OrtSettings
    from convbert_export.runtime.pipeline import Pipeline

    texts = _texts(20, seed=3)
    with Pipeline.from_export(exact_export, settings=OrtSettings(intra_op_threads=1), batch_size=1) as pipe:
        assert pipe.exact_padding
        solo = [pipe(t, return_tensors=True) for t in texts]
        pipe.batch_size = 8
        plan = plan_batches([pipe.tokenizer.num_tokens(t) for t in texts], 8, exact=True)
        assert any(len({pipe.tokenizer.num_tokens(texts[i]) for i in b}) > 1 for b in plan)  # mixed
        together = pipe(texts, return_tensors=True)
    for a, b in zip(solo, together):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_serving_code_does_not_import_torch(features):
    import subprocess
    import sys

    code = ("import sys, convbert_export.runtime.pipeline, convbert_export.runtime.batcher, "
            "convbert_export.runtime.ort, convbert_export.batching, convbert_export.commands.predict; "
            "from convbert_export.runtime.pipeline import Pipeline; "
            f"p = Pipeline.from_export({str(features.export_dir)!r}); p('hello world'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_runtime_exports_resolve_lazily():
    import subprocess
    import sys

    code = ("import sys, convbert_export.runtime as r; "
            "missing = [n for n in r.__all__ if n != 'RUNNERS' and getattr(r, n, None) is None]; "
            "import importlib; [getattr(importlib.import_module(m), c) for m, c in r.RUNNERS.values() if c != 'TorchRunner']; "
            "print(missing, 'torch' in sys.modules, 'tensorrt_rtx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False False"
