"""TrtRunner: the checks made before a plan is deserialized run here (no GPU needed); running an
engine needs a GPU and is marked ``gpu`` (skipped with the reason when there is none)."""

from __future__ import annotations

import json
import shutil
import sys
import threading

import numpy as np
import pytest

from convbert_export.engine import EngineSettings, build_engine, parse_profile
from convbert_export.errors import InvalidInputError, MissingDependencyError
from convbert_export.runtime.trt import TrtRunner

pytestmark = pytest.mark.tensorrt


@pytest.fixture()
def engine_copy(rtx_engine, tmp_path):
    """A private copy of the text-classification engine, free to corrupt."""
    target = tmp_path / "engine"
    shutil.copytree(rtx_engine("text-classification", "decomposed"), target)
    return target


def _no_backend(monkeypatch):
    """Make importing TensorRT (for RTX) fail: proves a check ran before TensorRT was touched."""
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_metadata_before_start(engine_copy):
    runner = TrtRunner(engine_copy)
    assert list(runner.input_metadata) == ["input_ids", "attention_mask", "token_type_ids"]
    assert runner.input_metadata["input_ids"].axes == ("batch", "sequence")
    assert runner.output_names == ("logits",)
    assert runner.limits.max_position_embeddings == 64
    with pytest.raises(InvalidInputError, match="not started"):
        runner.run({})


def test_corrupted_plan_is_refused_before_deserialization(engine_copy, monkeypatch):
    plan = engine_copy / "model.plan"
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))
    _no_backend(monkeypatch)
    with pytest.raises(InvalidInputError, match="does not match engine.json.*refusing to deserialize.*Rebuild"):
        TrtRunner(engine_copy).start()


def test_foreign_plan_is_refused(engine_copy, rtx_engine):
    other = rtx_engine("feature-extraction", "decomposed") / "model.plan"
    shutil.copy(other, engine_copy / "model.plan")
    with pytest.raises(InvalidInputError, match=r"expected \d+ bytes with sha256 .* got \d+ bytes"):
        TrtRunner(engine_copy).start()


def test_plan_without_engine_json_is_refused(engine_copy):
    (engine_copy / "engine.json").unlink()
    with pytest.raises(InvalidInputError, match="no engine.json; a plan without its engine.json is refused"):
        TrtRunner(engine_copy)


def test_other_version_is_refused(engine_copy):
    meta = json.loads((engine_copy / "engine.json").read_text())
    meta["backend_version"] = "0.9.0.1"
    (engine_copy / "engine.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="built with tensorrt-rtx 0.9.0.1, but .* is installed"):
        TrtRunner(engine_copy).start()


def test_missing_backend_at_start(engine_copy, monkeypatch):
    _no_backend(monkeypatch)
    with pytest.raises(MissingDependencyError, match="pip install tensorrt-rtx"):
        TrtRunner(engine_copy).start()


def _gpu_skip_reason() -> str | None:
    from convbert_export.engine.cuda import load_cuda

    try:
        load_cuda()
    except MissingDependencyError as exc:
        return f"no GPU: {exc}"
    return None


def test_valid_engine_needs_a_gpu(engine_copy):
    """Without a GPU the checks pass and start() stops at CUDA with a clear error."""
    if _gpu_skip_reason() is None:
        pytest.skip("a GPU is present; the gpu tests cover running")
    runner = TrtRunner(engine_copy)
    with pytest.raises(MissingDependencyError, match="GPU"):
        runner.start()
    assert not runner.is_active


# ---- running: needs a GPU ------------------------------------------------------------------

@pytest.fixture()
def gpu():
    reason = _gpu_skip_reason()
    if reason:
        pytest.skip(reason)


def _feeds(batch, seq, vocab=100, seed=0, choices=None):
    rng = np.random.default_rng(seed)
    shape = (batch, choices, seq) if choices else (batch, seq)
    ids = rng.integers(5, vocab, size=shape, dtype=np.int64)
    mask = np.ones(shape, dtype=np.int64)
    mask[0, ..., seq - seq // 3:] = 0  # the first row is right-padded
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros(shape, dtype=np.int64)}


@pytest.mark.gpu
@pytest.mark.parametrize("task,mode", [("text-classification", "decomposed"), ("multiple-choice", "custom-op")])
def test_engine_matches_onnxruntime(gpu, task, mode, rtx_engine, export_dir):
    from convbert_export.runtime.ort import OrtRunner

    choices = 3 if task == "multiple-choice" else None
    feeds = _feeds(4, 24, choices=choices)
    with OrtRunner(export_dir(task, mode)) as ort_runner, TrtRunner(rtx_engine(task, mode)) as trt_runner:
        expected = ort_runner.run(feeds)
        got = trt_runner.run(feeds)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, atol=1e-3, rtol=1e-3)


@pytest.mark.gpu
def test_split_pad_and_concurrent_callers(gpu, export_dir, tmp_path):
    """Batch 5 on a profile of max batch 2 is split (2+2+1, the 1 padded to min 2); two profiles
    let two threads run at once; every answer equals the single-row answers."""
    source = export_dir("text-classification", "decomposed")
    engine = build_engine(source, tmp_path / "e", EngineSettings(
        backend="tensorrt-rtx", profiles=(parse_profile("2,2,2:1,16,32"), parse_profile("2,2,2:1,16,32"))))
    feeds = _feeds(5, 16)
    feeds["attention_mask"][:] = 1
    with TrtRunner(engine) as runner:
        whole = runner.run(feeds)["logits"]
        assert whole.shape == (5, 2)
        rows = [runner.run({k: np.repeat(v[i:i + 1], 2, axis=0) for k, v in feeds.items()})["logits"][0]
                for i in range(5)]
        np.testing.assert_allclose(whole, np.stack(rows), atol=1e-5)
        results, errors = {}, []

        def call(i):
            try:
                results[i] = runner.run(feeds)["logits"]
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for value in results.values():
            np.testing.assert_allclose(value, whole, atol=1e-5)
        assert len(runner._slots) <= 2
        with pytest.raises(InvalidInputError, match="outside every optimization profile"):
            runner.run(_feeds(2, 40))
