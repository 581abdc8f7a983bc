"""Export errors: one clear line each, and nothing half-written."""

from __future__ import annotations

import pytest

from convbert_export.cli import main
from convbert_export.errors import InvalidInputError, UnknownNameError
from convbert_export.export import ExportSettings, ModelSource, export_tasks
from convbert_export.tasks import TASKS

from factories import GROUPED, make_model


def test_unknown_task_lists_the_tasks(tmp_path, capsys):
    assert main(["export", "--preset", "demo", "--task", "summarization", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'summarization'" in err and "text-classification" in err and "multiple-choice" in err
    assert not (tmp_path / "x").exists()


def test_unknown_preset_lists_presets(tmp_path, capsys):
    assert main(["export", "--preset", "huge", "--task", "fill-mask", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'huge'" in err and "conv-bert-base" in err


def test_model_and_preset_are_exclusive(tmp_path, capsys):
    assert main(["export", "-o", str(tmp_path / "x"), "--task", "fill-mask"]) == 2
    assert "exactly one of --model DIR or --preset NAME" in capsys.readouterr().err


def test_checkpoint_without_the_asked_head(tmp_path, capsys):
    model = make_model("fill-mask", GROUPED)
    model.save_pretrained(tmp_path / "mlm")
    code = main(["export", "--model", str(tmp_path / "mlm"), "--task", "question-answering", "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert "ConvBertForMaskedLM" in err and "qa_outputs" in err, err
    assert not (tmp_path / "x").exists()


def test_checkpoint_directory_missing(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="already exists; pass --force"):
        export_tasks(ModelSource.from_preset("demo"), ["feature-extraction"], tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_unwritable_output_directory(tmp_path):
    """/proc refuses new directories even to root, so this runs wherever the tests run."""
    with pytest.raises(InvalidInputError, match="is not writable"):
        export_tasks(ModelSource.from_preset("demo"), ["feature-extraction"], "/proc/convbert-export-out")


def test_output_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["export", "--preset", "demo", "--task", "fill-mask", "-o", str(tmp_path / "file" / "out")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err


def test_bad_settings(tmp_path):
    with pytest.raises(InvalidInputError, match="opset must be 17 or newer"):
        export_tasks(ModelSource.from_preset("demo"), ["fill-mask"], tmp_path / "o", ExportSettings(opset=13))
    with pytest.raises(UnknownNameError, match="expected one of: decomposed, custom-op"):
        export_tasks(ModelSource.from_preset("demo"), ["fill-mask"], tmp_path / "o", ExportSettings(dynamic_conv="fused"))


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch):
    """A KeyboardInterrupt after files were written removes the partial directory."""
    import convbert_export.export.exporter as export_module  # where export_tasks looks it up

    real = export_module.export_model
    calls = []

    def interrupted(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(sorted(p.name for p in result.path.iterdir()))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(export_module, "export_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_tasks(ModelSource.from_preset("demo"), ["feature-extraction", "fill-mask"], tmp_path / "out",
                     ExportSettings(validate=False))
    assert len(calls) == 2 and "model.onnx" in calls[0], "files had been written before the interrupt"
    assert list(tmp_path.iterdir()) == []


def test_failed_validation_exits_1_and_keeps_the_export(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["export", "--preset", "demo", "--task", "text-classification", "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["validate", str(out), "--atol", "0", "--rtol", "0", "-q"]) == 1
    captured = capsys.readouterr()
    assert "exceeds atol 0" in captured.err and "FAIL" in captured.out
    assert (out / "model.onnx").is_file() and (out / "validation.md").read_text().count("FAIL") >= 1
    assert main(["validate", str(out), "-q"]) == 0


def test_validate_on_an_unavailable_provider_says_so(tmp_path, capsys):
    import onnxruntime

    out = tmp_path / "demo"
    assert main(["export", "--preset", "demo", "--task", "feature-extraction", "-o", str(out), "-q", "--no-validate"]) == 0
    capsys.readouterr()
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    assert main(["validate", str(out), "--provider", "cuda", "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot validate on 'cuda'" in err and "CPUExecutionProvider" in err and "--provider cpu" in err


def test_validate_without_a_manifest(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_a_loaded_checkpoint_exports_with_its_own_tokenizer(tmp_path):
    """export(module) finds the tokenizer beside the checkpoint the module was loaded from,
    and records the checkpoint as the manifest's source."""
    import reference_model
    from convbert_export import Tokenizer, export
    from convbert_export.manifest import load_manifest

    ckpt = tmp_path / "ckpt"
    make_model("text-classification", GROUPED).save_pretrained(ckpt)
    (ckpt / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]) + "\n")
    model = reference_model.load(ckpt)
    result = export(model, None, tmp_path / "out", validate=False)
    assert (tmp_path / "out" / "vocab.txt").read_text() == (ckpt / "vocab.txt").read_text()
    assert load_manifest(result.path).source == {"checkpoint": str(ckpt.resolve())}
    assert Tokenizer.from_pretrained(result.path)("hello world")["input_ids"].tolist() == [[2, 5, 6, 3]]


def test_an_opset_the_exporter_cannot_produce_is_refused(tmp_path, capsys):
    """torch's exporter silently keeps opset 18 when it cannot convert to the asked opset; the
    manifest then claimed an opset the model does not have."""
    with pytest.raises(InvalidInputError, match="opset 99 is newer than"):
        export_tasks(ModelSource.from_preset("demo"), ["fill-mask"], tmp_path / "o", ExportSettings(opset=99))
    out = tmp_path / "o26"
    code = main(["export", "--preset", "demo", "--task", "text-classification", "-o", str(out), "--opset", "26",
                 "--no-validate", "-q"])
    if code == 0:  # a torch that converts to 26: the model and the manifest must agree
        import json

        import onnx

        opsets = {o.domain: o.version for o in onnx.load(str(out / "model.onnx"), load_external_data=False).opset_import}
        assert opsets[""] == json.loads((out / "manifest.json").read_text())["opset"] == 26
        return
    err = capsys.readouterr().err
    assert code == 2 and "opset 26" in err and "produced opset 18" in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_an_output_overlapping_the_checkpoint_is_refused(tmp_path):
    """--force over the checkpoint directory (or a directory holding it) deleted the checkpoint."""
    ckpt = tmp_path / "ckpt"
    make_model("text-classification", GROUPED).save_pretrained(ckpt)
    before = sorted(p.name for p in ckpt.iterdir())
    for output in (ckpt, tmp_path):
        with pytest.raises(InvalidInputError, match="would replace the checkpoint"):
            export_tasks(ModelSource.from_checkpoint(ckpt), None, output, ExportSettings(validate=False), force=True)
    assert sorted(p.name for p in ckpt.iterdir()) == before


def test_validate_refuses_tolerances_that_compare_nothing(tmp_path, capsys):
    """--atol nan made every comparison false, so no value ever counted as a violation: PASS."""
    from convbert_export.validate import ValidationSettings, validate

    out = tmp_path / "demo"
    assert main(["export", "--preset", "demo", "--task", "text-classification", "-o", str(out), "-q", "--no-validate"]) == 0
    capsys.readouterr()
    for option, value in (("--atol", "nan"), ("--rtol", "nan"), ("--atol", "-1"), ("--rtol", "inf")):
        assert main(["validate", str(out), option, value, "-q"]) == 2, (option, value)
        err = capsys.readouterr().err
        assert f"{option[2:]} must be a finite number >= 0, got {value}" in err, err
    with pytest.raises(InvalidInputError, match="min_agreement must be within"):
        validate(out, settings=ValidationSettings(min_agreement=float("nan")))
    assert not (out / "validation.json").exists()


def test_a_multi_task_export_root_names_its_task_directories(tmp_path, capsys):
    """validate/optimize on the root of a --task all export said "create one with export"."""
    from convbert_export.manifest import MANIFEST

    for task in ("fill-mask", "question-answering"):
        (tmp_path / "all" / task).mkdir(parents=True)
        (tmp_path / "all" / task / MANIFEST).write_text("{}")
    assert main(["validate", str(tmp_path / "all"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "one export per task" in err and "fill-mask, question-answering" in err
    assert str(tmp_path / "all" / "fill-mask") in err, err


def test_a_corrupted_export_is_one_line_not_a_traceback(tmp_path, capsys):
    """A truncated or missing model.onnx escaped validate and optimize as onnxruntime/protobuf tracebacks."""
    out = tmp_path / "demo"
    assert main(["export", "--preset", "demo", "--task", "text-classification", "-o", str(out), "-q", "--no-validate"]) == 0
    capsys.readouterr()
    model = out / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    assert main(["validate", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.onnx" in err and "differs from the manifest" in err, err
    assert main(["optimize", str(out), "-o", str(tmp_path / "opt"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "does not match its manifest" in err and "re-export" in err, err
    assert not (tmp_path / "opt").exists()
    model.unlink()
    assert main(["validate", str(out), "-q"]) == 2
    assert "model.onnx: listed in the manifest but missing" in capsys.readouterr().err


def test_a_head_exported_as_another_task_is_refused(tmp_path):
    """export(classifier, "fill-mask") wrote a "fill-mask" export whose logits were (batch, 2),
    and validated it against the same classifier: PASS."""
    import reference_model
    from convbert_export import export
    from convbert_export.validate import validate

    classifier = reference_model.from_preset("demo", "text-classification")
    with pytest.raises(InvalidInputError, match="is a ConvBertForSequenceClassification, but fill-mask needs ConvBertForMaskedLM"):
        export(classifier, "fill-mask", tmp_path / "wrong", validate=False)
    assert not (tmp_path / "wrong").exists()
    from factories import demo_export

    with pytest.raises(InvalidInputError, match="is a ConvBertForSequenceClassification, but fill-mask needs ConvBertForMaskedLM"):
        validate(demo_export("fill-mask"), classifier)  # refused before anything is written


def test_export_of_a_several_headed_checkpoint_writes_nothing(tmp_path):
    """export() (one task) wrote every head's directory, then said it writes one task."""
    import json

    from convbert_export import export

    ckpt = tmp_path / "ckpt"
    make_model("fill-mask", GROUPED).save_pretrained(ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["architectures"] = ["ConvBertForMaskedLM", "ConvBertModel"]
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInputError, match="lists 2 architectures .*pass task="):
        export(ckpt, None, tmp_path / "out", validate=False)
    assert not (tmp_path / "out").exists()


def test_validation_fails_when_the_manifest_misdescribes_the_graph(tmp_path, capsys):
    """Pipelines and engine profiles trust the manifest's specs; validation never compared them
    with the graph, so a manifest claiming other axes, dtypes or opset passed."""
    import json

    out = tmp_path / "demo"
    assert main(["export", "--preset", "demo", "--task", "text-classification", "-o", str(out), "-q", "--no-validate"]) == 0
    capsys.readouterr()
    original = (out / "manifest.json").read_text()
    edits = [
        (lambda m: m["outputs"][0].update(axes=["batch", 3]), "manifest output logits: axes ['batch', 3], graph ['batch', 2]"),
        (lambda m: m["outputs"][0].update(dtype="float16"), "manifest output logits: dtype float16, graph float32"),
        (lambda m: m["inputs"][1].update(axes=["batch", "seq"]), "manifest input attention_mask: axes ['batch', 'seq']"),
        (lambda m: m.update(opset=17), "manifest opset 17, graph 18"),
    ]
    for edit, message in edits:
        data = json.loads(original)
        edit(data)
        (out / "manifest.json").write_text(json.dumps(data))
        assert main(["validate", str(out), "-q"]) == 1, message
        err = capsys.readouterr().err
        assert message in err, err
    (out / "manifest.json").write_text(original)
    assert main(["validate", str(out), "-q"]) == 0


def test_output_dot_is_refused_before_exporting(tmp_path, monkeypatch, capsys):
    """-o . --force exported, then crashed with "PosixPath('.') has an empty name"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["export", "--preset", "demo", "--task", "text-classification", "-o", ".", "--force", "-q"]) == 2
    err = capsys.readouterr().err
    assert "would replace the current directory" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_failed_swap_keeps_the_old_output(tmp_path, monkeypatch):
    """With --force the old output is moved aside before the new one moves in; when that second
    rename failed, the old output stayed hidden under a dot-name and the output was gone."""
    import os

    from convbert_export import fileio

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "manifest.json").write_text("{}")  # an export of ours: --force may replace it
    real = os.replace

    def failing(src, dst):
        if str(src).endswith(".partial"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", failing)
    with pytest.raises(OSError):
        with fileio.atomic_directory(out, force=True) as tmp:
            (tmp / "new.txt").write_text("new")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "keep.txt").read_text() == "mine" and (out / "manifest.json").is_file()


def test_an_empty_grid_fails_and_reports_are_strict_json(tmp_path, capsys):
    """An empty grid compared nothing and passed; its NaN agreement made validation.json and
    --json output invalid JSON (NaN is not JSON)."""
    import json

    from convbert_export.validate import ValidationSettings, validate

    out = tmp_path / "demo"
    assert main(["export", "--preset", "demo", "--task", "text-classification", "-o", str(out), "-q", "--no-validate"]) == 0
    capsys.readouterr()
    report = validate(out, settings=ValidationSettings(batches=(), texts=False), raise_on_failure=False)
    assert not report.passed and any("never compared" in f for f in report.failures), report.failures

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))

    data = strict((out / "validation.json").read_text())
    assert data["agreement"]["value"] is None and not data["passed"]


def test_a_config_that_is_not_an_object_is_one_line(tmp_path, capsys):
    """config.json holding a list escaped as AttributeError: 'list' object has no attribute 'get'."""
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("[1, 2]")
    assert main(["export", "--model", str(tmp_path / "ckpt"), "-o", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "config.json: expected a JSON object, got a list" in err, err
    (tmp_path / "ckpt" / "config.json").write_text('{"architectures": "ConvBertForMaskedLM"}')
    assert ModelSource.from_checkpoint(tmp_path / "ckpt").default_tasks() == ["fill-mask"]


def test_task_all_of_a_checkpoint_is_its_heads_plus_feature_extraction(tmp_path):
    """--task all on a one-head checkpoint exports what its weights support, not six heads."""
    from convbert_export.export import ModelSource, _resolve_tasks

    make_model("token-classification", GROUPED).save_pretrained(tmp_path / "ckpt")
    source = ModelSource.from_checkpoint(tmp_path / "ckpt")
    assert _resolve_tasks(source, ["all"]) == ["feature-extraction", "token-classification"]
    assert _resolve_tasks(ModelSource.from_preset("demo"), ["all"]) == list(TASKS)
