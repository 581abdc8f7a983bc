"""Integrity at load (issue 11, items 1-5): checksums verified before any session, symlinks
leaving the directory refused, --force only over our own or empty directories, SIGTERM cleanup
and stale partials, shard-index traversal refused, non-finite weights warned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convbert_export.errors import IntegrityError, InvalidInputError


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    code = "import sys; from convbert_export.cli import main; sys.exit(main(sys.argv[1:]))"
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def demo_export() -> Path:
    from factories import demo_export as cached

    return cached("text-classification")


@pytest.fixture
def export_copy(demo_export, tmp_path) -> Path:
    copy = tmp_path / "clf"
    shutil.copytree(demo_export, copy)
    return copy


def _flip_a_weight(path: Path) -> None:
    """Change one byte of an initializer in the middle of model.onnx (still a valid model)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x01
    path.write_bytes(bytes(data))


def test_pipeline_refuses_an_edited_model(export_copy):
    from convbert_export.runtime.pipeline import Pipeline

    _flip_a_weight(export_copy / "model.onnx")
    with pytest.raises(IntegrityError, match="model.onnx") as info:
        Pipeline.from_export(export_copy)
    assert "\n" not in str(info.value) and "--no-verify" in str(info.value)
    # the opt-out serves it (the caller verified at deploy time)
    with Pipeline.from_export(export_copy, verify=False) as pipe:
        assert pipe("a fine movie")[0]["label"] in ("LABEL_0", "LABEL_1")


def test_ort_runner_refuses_an_edited_model(export_copy):
    from convbert_export.runtime.ort import OrtRunner

    _flip_a_weight(export_copy / "model.onnx")
    with pytest.raises(IntegrityError, match="model.onnx"):
        OrtRunner(export_copy)


def test_edited_vocab_and_added_tokenizer_json_are_refused(export_copy, demo_export):
    from convbert_export.runtime.pipeline import Pipeline

    with (export_copy / "vocab.txt").open("a", encoding="utf-8") as handle:
        handle.write("extra\n")
    with pytest.raises(IntegrityError, match="vocab.txt"):
        Pipeline.from_export(export_copy)
    shutil.copyfile(demo_export / "vocab.txt", export_copy / "vocab.txt")
    Pipeline.from_export(export_copy).close()  # restored: loads
    (export_copy / "tokenizer.json").write_text("{}", encoding="utf-8")  # would be read before vocab.txt
    with pytest.raises(IntegrityError, match="tokenizer.json"):
        Pipeline.from_export(export_copy)


def test_swapped_symlink_and_symlink_leaving_the_directory(export_copy, tmp_path):
    from convbert_export.runtime.pipeline import Pipeline

    # a symlink to an identical file outside the directory is refused all the same
    outside = tmp_path / "outside-vocab.txt"
    shutil.copyfile(export_copy / "vocab.txt", outside)
    (export_copy / "vocab.txt").unlink()
    (export_copy / "vocab.txt").symlink_to(outside)
    with pytest.raises(IntegrityError, match="vocab.txt.*outside"):
        Pipeline.from_export(export_copy)
    # a symlink inside the directory to an identical file is fine; swapped to another, refused
    (export_copy / "vocab.txt").unlink()
    shutil.copyfile(outside, export_copy / "vocab-real.txt")
    (export_copy / "vocab.txt").symlink_to("vocab-real.txt")
    Pipeline.from_export(export_copy).close()
    (export_copy / "vocab.txt").unlink()
    (export_copy / "vocab.txt").symlink_to("config.json")
    with pytest.raises(IntegrityError, match="vocab.txt"):
        Pipeline.from_export(export_copy)


def test_predict_cli_refuses_then_no_verify_serves(export_copy):
    _flip_a_weight(export_copy / "model.onnx")
    result = _cli("predict", str(export_copy), "--text", "a fine movie", "-q")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "model.onnx" in result.stderr and result.stdout == ""
    result = _cli("predict", str(export_copy), "--text", "a fine movie", "-q", "--no-verify")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"]["label"] in ("LABEL_0", "LABEL_1")


# ---- item 2: --force replaces only our own directories (or an empty one) -------------------
def test_force_refuses_a_directory_that_is_not_an_export(tmp_path, demo_export):
    from convbert_export.export import ExportSettings, ModelSource, export_tasks

    precious = tmp_path / "mine"
    (precious / "sub").mkdir(parents=True)
    (precious / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not an export or engine directory"):
        export_tasks(ModelSource.from_preset("demo"), ["text-classification"], precious,
                     ExportSettings(validate=False), force=True)
    assert (precious / "precious.txt").read_text(encoding="utf-8") == "keep me" and (precious / "sub").is_dir()
    # an export directory (ours) and an empty directory are replaced
    from convbert_export.fileio import check_output_dir

    ours = tmp_path / "ours"
    shutil.copytree(demo_export, ours)
    assert check_output_dir(ours, force=True) == ours
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty", force=True) == tmp_path / "empty"


def test_force_cli_refusal_is_one_line_exit_2(tmp_path):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "precious.txt").write_text("keep me", encoding="utf-8")
    result = _cli("export", "--preset", "demo", "--task", "text-classification", "-o", str(precious),
                  "--force", "--no-validate", "-q")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert (precious / "precious.txt").is_file()


# ---- item 3: SIGTERM cleans up like SIGINT; stale partials of dead runs are removed ---------
def test_sigterm_mid_export_leaves_nothing_and_stale_partials_are_removed(tmp_path):
    import signal
    import time

    code = ("import sys; from convbert_export.cli import main; "
            "sys.exit(main(['export', '--preset', 'demo', '--task', 'all', '-o', sys.argv[1], '--no-validate', '-q']))")
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], env={**os.environ, "PYTHONPATH": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.partial")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.*.partial")), "the export never started writing"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().count("\n") == 0 and "terminated" in stderr
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())

    # a partial left by a process that no longer exists (kill -9, power loss) is removed on the
    # next run into the same output; one of a live process is left alone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.{dead_pid}.x1y2.partial"
    (stale / "feature-extraction").mkdir(parents=True)
    live = tmp_path / f".out.{os.getpid()}.a1b2.partial"
    live.mkdir()
    from convbert_export.fileio import atomic_directory

    with atomic_directory(out) as tmp:
        (tmp / "manifest.json").write_text("{}", encoding="utf-8")
    assert not stale.exists() and live.is_dir() and (out / "manifest.json").is_file()


# ---- item 4: a shard index may not point outside the checkpoint ------------------------------
def _tiny_checkpoint(directory: Path, task_class: str = "ConvBertForSequenceClassification") -> Path:
    import torch

    import reference_model

    config = reference_model.ConvBertConfig(
        vocab_size=64, embedding_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, conv_kernel_size=3, max_position_embeddings=32, pad_token_id=0,
        architectures=[task_class])
    torch.manual_seed(0)
    model = getattr(reference_model, task_class)(config).eval()
    model.save_pretrained(directory)
    return directory


def test_shard_index_pointing_outside_the_checkpoint_is_refused(tmp_path):
    import reference_model
    from reference_model.errors import CheckpointError  # reference_model.load raises its own errors

    outside = _tiny_checkpoint(tmp_path / "elsewhere")
    checkpoint = tmp_path / "a" / "b" / "ckpt"
    checkpoint.mkdir(parents=True)
    shutil.copyfile(outside / "config.json", checkpoint / "config.json")
    from safetensors import safe_open

    with safe_open(str(outside / "model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    index = {"metadata": {}, "weight_map": {key: "../../../elsewhere/model.safetensors" for key in keys}}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        reference_model.load(checkpoint)
    # an absolute path and a symlinked shard leaving the directory are refused the same way
    index["weight_map"] = {key: str(outside / "model.safetensors") for key in keys}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        reference_model.load(checkpoint)
    (checkpoint / "shard.safetensors").symlink_to(outside / "model.safetensors")
    index["weight_map"] = {key: "shard.safetensors" for key in keys}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        reference_model.load(checkpoint)
    # inside the directory it loads
    (checkpoint / "shard.safetensors").unlink()
    shutil.copyfile(outside / "model.safetensors", checkpoint / "shard.safetensors")
    assert reference_model.load(checkpoint).config.hidden_size == 16


# ---- item 15: save_pretrained respects the umask like every other file ----------------------
def test_save_pretrained_weights_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        checkpoint = _tiny_checkpoint(tmp_path / "ckpt")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in checkpoint.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] == 0o644, modes


# ---- item 5: non-finite weights warned at load; agreement never computed on NaN ---------------
def test_nonfinite_weights_warn_and_validation_reports_no_agreement(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    import convbert_export
    import reference_model
    from convbert_export.errors import ValidationFailedError
    from convbert_export.report.validation import validation_table

    checkpoint = _tiny_checkpoint(tmp_path / "ckpt")
    state = load_file(str(checkpoint / "model.safetensors"))
    state["classifier.out_proj.weight"][0, 0] = float("nan")
    state["classifier.dense.bias"][1] = float("inf")
    save_file(state, str(checkpoint / "model.safetensors"), metadata={"format": "pt"})
    with pytest.warns(RuntimeWarning, match=r"non-finite.*2 tensors.*classifier\.") as record:
        model = reference_model.load(checkpoint)
    assert len([w for w in record if "non-finite" in str(w.message)]) == 1
    with pytest.raises(ValidationFailedError) as info:
        convbert_export.export(model, "text-classification", tmp_path / "out", tokenizer_dir=None,
                               validation=None)
    report = info.value.report
    data = report.to_dict()
    assert data["agreement"]["value"] is None or data["agreement"]["value"] != data["agreement"]["value"]
    assert data["agreement"]["nonfinite_cases"] > 0
    text = validation_table(report)
    assert "100.00%" not in text and "agreement not computed" in text, text
    assert "padding effect" not in text or "not measured" in text, text
    assert any("non-finite" in failure or "NaN" in failure for failure in data["failures"])
    assert torch.isnan(model.classifier.out_proj.weight[0, 0])
