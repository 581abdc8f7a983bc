"""``convbert-export build-engine``: real builds, errors as one line, exit codes, and imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from convbert_export.cli import main
from convbert_export.fileio import sha256_file


def _run(capsys, *args):
    code = main(["build-engine", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.tensorrt
def test_build_engine_json_output(trt_rtx, export_dir, tmp_path, capsys):
    source = export_dir("question-answering", "decomposed")
    code, out, err = _run(capsys, source, "--output", tmp_path / "e", "--backend", "tensorrt-rtx",
                          "--profile", "1,1,2:8,32,64", "--profile", "1,8,16:1,16,32",
                          "--timing-cache", tmp_path / "t.cache", "--json", "--quiet")
    assert code == 0, err
    assert err == ""  # --quiet: no progress
    data = json.loads(out)
    assert data["engine_dir"] == str(tmp_path / "e")
    assert data["profiles"] == [{"batch": [1, 1, 2], "sequence": [8, 32, 64]},
                                {"batch": [1, 8, 16], "sequence": [1, 16, 32]}]
    assert data["plan"]["sha256"] == sha256_file(tmp_path / "e" / "model.plan")
    assert (tmp_path / "t.cache").is_file()


@pytest.mark.tensorrt
def test_build_engine_shows_progress(trt_rtx, export_dir, tmp_path, capsys):
    source = export_dir("question-answering", "decomposed")
    code, out, err = _run(capsys, source, "-o", tmp_path / "e", "--backend", "tensorrt-rtx", "--profile", "1:16")
    assert code == 0, err
    assert "parsing model.onnx with TensorRT for RTX" in err and "building the TensorRT for RTX engine" in err
    assert out.startswith(f"built {tmp_path / 'e'}: tensorrt-rtx ") and "question-answering" in out


@pytest.mark.tensorrt
@pytest.mark.parametrize("args,message", [
    (["--backend", "tensorrt-rtx", "--fp16"], "strongly typed and has no --fp16 builder flag"),
    (["--backend", "tensorrt-rtx", "--int8", "--calibration", "{cal}"], "no --int8 builder flag"),
    (["--backend", "tensorrt-rtx", "--profile", "1,8,32"], "expected 2 ':'-separated parts"),
    (["--backend", "tensorrt-rtx", "--profile", "1,8,32:1,2,3:1,2,3"], "expected 2 ':'-separated parts"),
    (["--backend", "tensorrt-rtx", "--profile", "1,8,32:1,64,65"], "exceeds the model's max_position_embeddings 64"),
    (["--backend", "tensorrt-rtx", "--profile", "4,2,8:1,2,3"], "batch range min=4, opt=2, max=8 is invalid"),
    (["--int8"], "--int8 needs calibration data"),
])
def test_cli_errors_are_one_line(trt_rtx, export_dir, tmp_path, capsys, args, message):
    calibration = tmp_path / "cal.jsonl"
    calibration.write_text('{"text": "hello"}\n')
    args = [a.format(cal=calibration) for a in args]
    code, out, err = _run(capsys, export_dir("text-classification", "decomposed"), "-o", tmp_path / "e", *args)
    assert code == 2
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "e").exists()


def test_multiple_choice_profile_needs_three_parts(export_dir, tmp_path, capsys):
    code, _, err = _run(capsys, export_dir("multiple-choice", "custom-op"), "-o", tmp_path / "e",
                        "--backend", "tensorrt-rtx", "--profile", "1,2,4:1,16,64")
    assert code == 2
    assert "expected 3 ':'-separated parts (batch, num_choices, sequence)" in err


def test_not_an_export_dir(tmp_path, capsys):
    code, _, err = _run(capsys, tmp_path, "-o", tmp_path / "e", "--backend", "tensorrt-rtx")
    assert code == 2 and "is not an export directory" in err


@pytest.mark.parametrize("backend,module,install", [
    ("tensorrt", "tensorrt", "pip install tensorrt"),
    ("tensorrt-rtx", "tensorrt_rtx", "pip install tensorrt-rtx"),
])
def test_missing_backend_exits_2_with_install_line(backend, module, install, tmp_path, capsys, monkeypatch):
    """sys.modules[name] = None makes the import fail, as if the package were not installed."""
    monkeypatch.setitem(sys.modules, module, None)
    code, out, err = _run(capsys, tmp_path, "-o", tmp_path / "e", "--backend", backend)
    assert code == 2
    assert err.count("\n") == 1 and install in err and "is not installed" in err


def test_imports_need_neither_tensorrt_nor_torch():
    code = (
        "import sys\n"
        "import convbert_export, convbert_export.engine, convbert_export.runtime.trt\n"
        "import convbert_export.engine.builder, convbert_export.engine.cuda, convbert_export.commands.build_engine\n"
        "heavy = [m for m in ('tensorrt', 'tensorrt_rtx', 'torch', 'cuda') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.tensorrt
def test_an_output_overlapping_the_export_is_refused(trt_rtx, export_dir, tmp_path, capsys):
    """-o EXPORT/engine broke the export's checksums; -o EXPORT --force replaced the export with
    the engine directory (model.onnx gone)."""
    import shutil

    from convbert_export.manifest import verify_checksums

    source = shutil.copytree(export_dir("text-classification", "decomposed"), tmp_path / "export")
    for output, extra in ((source / "engine", []), (source, ["--force"]), (tmp_path, ["--force"])):
        code, _, err = _run(capsys, source, "-o", output, "--backend", "tensorrt-rtx", *extra)
        assert code == 2 and "overlaps the export directory" in err, (output, err)
    assert verify_checksums(source) == [] and (source / "model.onnx").is_file()
