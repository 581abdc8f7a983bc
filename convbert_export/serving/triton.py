"""A Triton Inference Server model repository from export and engine directories.

``write_repository([dir, ...], "repo")`` writes, per directory:

* ``repo/<name>/config.pbtxt`` and ``repo/<name>/1/``: an export directory becomes an
  ``onnxruntime_onnx`` model (``model.onnx``, ``model.onnx.data`` when present, and the
  DynamicConv custom-op library with ``model_operations { op_library_filename }`` when the export
  uses the custom op); a TensorRT engine directory becomes a ``tensorrt_plan`` model
  (``model.plan``, and the DynamicConv plugin library, which Triton's TensorRT backend loads with
  ``--backend-config=tensorrt,plugins=...`` or ``LD_PRELOAD``). Inputs, outputs, dims (-1 for
  dynamic axes) and dtypes come from the manifest; ``max_batch_size``, ``dynamic_batching``
  (preferred sizes, queue delay, a queue policy that rejects when full) and ``instance_group``
  from :class:`TritonSettings`.
* with ``ensemble`` (default): ``<name>_tokenize`` and ``<name>_answer`` (Python backend, the thin
  ``model.py`` template next to this module) and ``<name>_text`` (an ``ensemble``: ``TEXT`` ->
  tokenize -> ``<name>`` -> answer -> ``ANSWER``). A client sends one record (the JSON objects of
  ``predict``: ``{"text"}``, ``{"question", "context"}``...) as ``TEXT`` and gets back in
  ``ANSWER`` the JSON of what ``Pipeline`` returns for it. The logic those two Python models run
  is :class:`TextStep` (``triton_step.py``), tested directly.

This module loads and checks the sources and copies their files; the ModelConfig dicts and their
config.pbtxt text are built in ``triton_config.py``.

Which exports are safe to batch: Triton's dynamic batcher concatenates requests whose shapes are
equal (no padding unless ragged batching is configured), so padding enters only through rows
padded together inside one request (a client's padded batch, or the windows of one long
question-answering context). An export with ``"padding": "exact"`` gives the same answer padded
or not; one with ``"padding": "transformers"`` leaks padding into the last real tokens, and one
with ``"batch_invariant": false`` (dynamic int8) depends on its batch-mates even at equal
lengths. For those two the generated config has no ``dynamic_batching`` unless
``allow_unsafe_batching`` is set, and an ensemble over a leaking question-answering export is
refused.

Needs ``tritonclient`` (the ``triton`` extra) to write configs: they are built as
``ModelConfig`` protobuf messages from Triton's own schema, so a misspelt field cannot be
written. The :class:`TextStep` logic needs only numpy and the tokenizer.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..fileio import atomic_directory, sha256_file, write_json_atomic, write_text_atomic
from ..manifest import load_manifest
from ..tokenization import TOKENIZER_FILES
from .triton_config import KINDS, Source, TritonSettings, config_text, model_config, step_configs
from .triton_step import ANSWER_OUTPUT, ROLES, TEXT_INPUT, TextStep

__all__ = ["TritonSettings", "TritonRepository", "write_repository", "TextStep", "MODEL_TEMPLATE",
           "KINDS", "TEXT_INPUT", "ANSWER_OUTPUT", "config_text", "ROLES"]

MODEL_TEMPLATE = Path(__file__).with_name("model.py")
REPOSITORY_JSON = "triton-repository.json"
# files the Python-backend steps need from an export: what Pipeline reads besides the model
STEP_FILES = ("manifest.json", "config.json", *TOKENIZER_FILES)


@dataclass
class TritonRepository:
    """What :func:`write_repository` wrote."""

    path: Path
    models: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def files(self) -> list[tuple[str, int]]:
        """(relative path, size in bytes) of every file, sorted."""
        return [(str(p.relative_to(self.path)), p.stat().st_size)
                for p in sorted(self.path.rglob("*")) if p.is_file()]


# ---------------------------------------------------------------------------------------------
# sources and writing
# ---------------------------------------------------------------------------------------------
def _source(directory: Path, name: str) -> Source:
    from ..runtime import is_engine_dir

    from ..runtime.factory import backend_for, verify_dir

    if backend_for(directory) == "openvino":
        raise InvalidInputError(
            f"{directory} is an OpenVINO IR directory; write the repository from the ONNX export it was "
            "made from (this writer makes onnxruntime_onnx and tensorrt_plan models)"
        )
    manifest = load_manifest(directory)
    verify_dir(directory)  # every file against the manifest (IntegrityError names each one)
    if not is_engine_dir(directory):
        return Source(directory, name, manifest)
    from ..engine.metadata import PLAN, read_engine_info

    info = read_engine_info(directory)
    plan = directory / PLAN
    if not plan.is_file() or plan.stat().st_size != info.plan_bytes or sha256_file(plan) != info.plan_sha256:
        raise InvalidInputError(
            f"{plan}: missing or not the plan engine.json describes (size/sha256); rebuild the engine "
            "with `convbert-export build-engine`"
        )
    return Source(directory, name, manifest, engine=info)


def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


def _write_model(source: Source, settings: TritonSettings, root: Path) -> list[str]:
    config, notes = model_config(source, settings)
    version = root / source.name / "1"
    version.mkdir(parents=True)
    if source.engine is not None:
        from ..engine.metadata import PLAN

        _copy(source.directory / PLAN, version / PLAN)
        plugin = source.engine.plugin
        if plugin:
            library = Path(plugin["path"])
            if not library.is_file() or sha256_file(library) != plugin.get("sha256"):
                raise InvalidInputError(
                    f"the engine's plugin library {str(library)!r} is missing or not the one it was built "
                    "with (sha256); rebuild the engine, or restore the library"
                )
            _copy(library, version / library.name)
            notes.append(
                f"{source.name}: start Triton with --backend-config=tensorrt,plugins="
                f"{settings.repository_mount.rstrip('/')}/{source.name}/1/{library.name} (or LD_PRELOAD it)"
            )
    else:
        _copy(source.directory / "model.onnx", version / "model.onnx")
        if (source.directory / "model.onnx.data").is_file():
            _copy(source.directory / "model.onnx.data", version / "model.onnx.data")
        if "model_operations" in config:
            from ..custom_ops import library_path

            _copy(library_path(build=True), version / Path(config["model_operations"]["op_library_filename"][0]).name)
    write_text_atomic(root / source.name / "config.pbtxt", config_text(config))
    return notes


def _write_steps(source: Source, settings: TritonSettings, root: Path) -> list[str]:
    if source.manifest.task == "question-answering" and source.manifest.padding != "exact":
        raise InvalidInputError(
            f"{source.directory}: the text ensemble pads a long context's windows together, and this "
            "question-answering export leaks padding; re-export with --padding exact, or pass --no-ensemble"
        )
    names = []
    for config in step_configs(source, settings):
        directory = root / config["name"]
        (directory / "1").mkdir(parents=True)
        if config.get("backend") == "python":
            _copy(MODEL_TEMPLATE, directory / "1" / "model.py")
            for filename in STEP_FILES:
                if (source.directory / filename).is_file():
                    _copy(source.directory / filename, directory / "1" / filename)
        write_text_atomic(directory / "config.pbtxt", config_text(config))
        names.append(config["name"])
    return names


def _names(sources: list[Path], name: str | None) -> list[str]:
    if name is not None:
        if len(sources) != 1:
            raise InvalidInputError(f"--name names one model, but {len(sources)} directories were given; drop --name")
        return [name]
    names = [re.sub(r"[^A-Za-z0-9_.-]", "_", Path(os.path.abspath(s)).name) or "model" for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(
            f"two directories would be named {duplicates[0]!r} in the repository; pass them one at a time "
            "with --name, or rename a directory"
        )
    return names


def write_repository(sources, output, settings: TritonSettings | None = None, force: bool = False) -> TritonRepository:
    """Write a Triton model repository for export and/or engine directories (see the module doc).

    The repository is written to a temporary directory beside ``output`` and renamed into place,
    so an error never leaves a half-written repository. ``force`` replaces an existing one.
    """
    settings = settings or TritonSettings()
    sources = [Path(s) for s in ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]
    if not sources:
        raise InvalidInputError("no export or engine directory given; pass at least one")
    names = _names(sources, settings.name)
    loaded = [_source(directory, name) for directory, name in zip(sources, names)]
    output = Path(output)
    result = TritonRepository(Path(os.path.abspath(output)))
    with atomic_directory(output, force=force) as tmp:
        for source in loaded:
            result.warnings.extend(_write_model(source, settings, tmp))
            kind = "tensorrt_plan" if source.engine is not None else "onnxruntime_onnx"
            result.models.append({"name": source.name, "platform": kind, "task": source.manifest.task,
                                  "dynamic_batching": source.batch_safe or settings.allow_unsafe_batching})
            if settings.ensemble:
                steps = _write_steps(source, settings, tmp)
                result.models.extend({"name": n, "platform": "python" if not n.endswith("_text") else "ensemble",
                                      "task": source.manifest.task} for n in steps)
        # what was written, from what (Triton reads only the model folders; --force knows it is ours)
        write_json_atomic(tmp / REPOSITORY_JSON, {
            "format": "convbert-export-triton/1", "models": result.models, "notes": result.warnings,
            "sources": [str(s.directory.resolve()) for s in loaded], "settings": asdict(settings)})
    return result
