"""Pipelines and ``predict`` on TensorRT engine directories (``build-engine`` output).

Building an engine needs only TensorRT for RTX (no GPU), so the detection, the refusals and the
clear error when no GPU (or no TensorRT) is present are tested here; running the engine needs a
GPU and is marked ``gpu`` (skipped with the reason when there is none).
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings

import numpy as np
import pytest

from convbert_export.errors import InvalidInputError, MissingDependencyError

from .conftest import VOCAB, assert_close_nested, save_tokenizer

pytestmark = pytest.mark.tensorrt

PROFILE = "1,2,4:1,16,32"  # batch 1..4, sequence 1..32 (the model has 64 positions)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """(export_dir, engine_dir): a tiny text-classification export by the project exporter
    (exact padding, the test vocabulary) and its TensorRT-for-RTX engine with one profile."""
    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX is not installed (pip install tensorrt-rtx)")
    import convbert_export
    import reference_model
    from convbert_export.engine import EngineSettings, build_engine, parse_profile
    from factories import seeded_model

    config = reference_model.ConvBertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, embedding_size=32, conv_kernel_size=5,
        head_ratio=2, type_vocab_size=2, pad_token_id=0, architectures=["ConvBertForSequenceClassification"],
        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    model = seeded_model(config)
    root = tmp_path_factory.mktemp("engine-dirs")
    save_tokenizer(root / "tokenizer")
    export = root / "export"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convbert_export.export(model, "text-classification", export, padding="exact", validate=False,
                               tokenizer_dir=root / "tokenizer")
    engine = build_engine(export, root / "engine", EngineSettings(
        backend="tensorrt-rtx", profiles=(parse_profile(PROFILE),)))
    return export, engine


def _gpu_missing() -> str | None:
    from convbert_export.engine.cuda import load_cuda

    try:
        load_cuda()
    except MissingDependencyError as exc:
        return str(exc)
    return None


def test_engine_dir_is_detected(dirs):
    from convbert_export.runtime.pipeline import is_engine_dir

    export, engine = dirs
    assert is_engine_dir(engine) and (engine / "model.plan").is_file()
    assert not is_engine_dir(export)


def test_engine_dir_refuses_onnxruntime_options(dirs):
    from convbert_export.runtime.ort import OrtSettings
    from convbert_export.runtime.pipeline import Pipeline

    _, engine = dirs
    for provider in ("cpu", "cuda"):
        with pytest.raises(InvalidInputError, match=f"engine directory.*only on TensorRT; got provider='{provider}'"):
            Pipeline.from_export(engine, provider=provider)
    with pytest.raises(InvalidInputError, match="OrtSettings.*configure ONNX Runtime"):
        Pipeline.from_export(engine, settings=OrtSettings(intra_op_threads=1))


def test_engine_dir_without_gpu_fails_cleanly(dirs):
    """With TensorRT for RTX but no GPU, the engine's checks pass and the runner stops at CUDA
    with a typed error; nothing is left started."""
    from convbert_export.runtime.pipeline import Pipeline

    reason = _gpu_missing()
    if reason is None:
        pytest.skip("a GPU is present; test_engine_pipeline_matches_onnxruntime covers running")
    _, engine = dirs
    for provider in (None, "tensorrt"):
        with pytest.raises(MissingDependencyError, match="GPU"):
            Pipeline.from_export(engine, provider=provider)


def test_engine_dir_without_tensorrt_fails_cleanly(dirs, monkeypatch):
    from convbert_export.runtime.pipeline import Pipeline

    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)  # importing it now fails
    _, engine = dirs
    with pytest.raises(MissingDependencyError, match="pip install tensorrt-rtx"):
        Pipeline.from_export(engine)


def test_inconsistent_engine_dir_is_refused(dirs, tmp_path):
    from convbert_export.runtime.pipeline import Pipeline

    _, engine = dirs
    copy = tmp_path / "engine"
    shutil.copytree(engine, copy)
    meta = json.loads((copy / "engine.json").read_text())
    meta["task"] = "feature-extraction"
    (copy / "engine.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="engine.json says task 'feature-extraction' but manifest.json"):
        Pipeline.from_export(copy)


def test_engine_profiles_cap_the_pipeline_length(dirs):
    """Texts are truncated/windowed to what the engine's profiles accept (32), not the 64 positions."""
    from convbert_export.runtime.pipeline import _max_length
    from convbert_export.runtime.trt import TrtRunner
    from convbert_export.tokenization import Tokenizer

    export, engine = dirs
    tokenizer = Tokenizer.from_pretrained(engine)
    assert tokenizer.model_max_length == 64
    assert _max_length(tokenizer, 64, TrtRunner(engine)) == 32
    from convbert_export.runtime.ort import OrtRunner

    assert _max_length(tokenizer, 64, OrtRunner(export)) == 64


def _cli(capsys, *args):
    from convbert_export.cli import main

    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_cli_on_engine_dir(dirs, capsys):
    _, engine = dirs
    code, out, err = _cli(capsys, engine, "--text", "hello world", "--provider", "cpu", "--quiet")
    assert code == 2 and out == ""
    assert "engine directory" in err and "only on TensorRT; got provider='cpu'" in err
    code, _, err = _cli(capsys, engine, "--text", "hello world", "--threads", "2", "--quiet")
    assert code == 2 and "--threads sets ONNX Runtime threads" in err
    if _gpu_missing() is not None:
        code, out, err = _cli(capsys, engine, "--text", "hello world", "--quiet")
        assert code == 2 and out == "" and "GPU" in err and len(err.strip().splitlines()) == 1


@pytest.mark.gpu
def test_engine_pipeline_matches_onnxruntime(dirs, capsys):
    """On a GPU: the engine's answers equal the ONNX export's (fp32 engine, 1e-4), long texts are
    truncated to the profile's 32 tokens, and predict runs the engine directory."""
    reason = _gpu_missing()
    if reason:
        pytest.skip(f"no GPU: {reason}")
    from convbert_export.runtime.ort import OrtSettings
    from convbert_export.runtime.pipeline import Pipeline

    export, engine = dirs
    texts = ["hello world", "john lives in paris and works at google in new york", "the dog ran"]
    with Pipeline.from_export(engine, batch_size=4) as trt, \
            Pipeline.from_export(export, settings=OrtSettings(intra_op_threads=1), batch_size=4) as ort:
        assert trt.max_length == 32
        assert_close_nested(trt(texts, top_k=None), ort(texts, top_k=None), atol=1e-4)
        with pytest.warns(RuntimeWarning, match="truncated to 32 tokens"):
            trt("dog " * 100)
        expected = ort.run_many([texts[1]])[0]  # what predict writes: {"label", "score"}
    code, out, err = _cli(capsys, engine, "--text", texts[1], "--quiet")
    assert code == 0, err
    row = json.loads(out)
    assert_close_nested(row["result"], expected, atol=1e-4)
    assert np.isfinite(row["result"]["score"])


def test_engine_dir_files_are_verified_before_loading(dirs, tmp_path):
    """An edited tokenizer.json or manifest.json in an engine directory is refused before any
    TensorRT work (issue 11, item 1); verify=False gets past it (to the next check)."""
    from convbert_export.errors import IntegrityError
    from convbert_export.runtime.pipeline import Pipeline

    _, engine = dirs
    copy = tmp_path / "engine"
    shutil.copytree(engine, copy)
    with (copy / "tokenizer.json").open("a", encoding="utf-8") as handle:
        handle.write("\n")  # still valid JSON, another sha256
    with pytest.raises(IntegrityError, match="tokenizer.json"):
        Pipeline.from_export(copy)
    shutil.copyfile(engine / "tokenizer.json", copy / "tokenizer.json")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["tokenizer.json"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="manifest.json"):
        Pipeline.from_export(copy)
    with pytest.raises(MissingDependencyError):  # past verification: no GPU here (or it runs)
        if _gpu_missing() is None:
            raise MissingDependencyError("a GPU is present: verification was skipped as asked")
        Pipeline.from_export(copy, verify=False)
