"""``manifest.json``: what an export directory holds, read and written in one place.

No torch here: serving code reads manifests. The format is documented in
docs/ARCHITECTURE.md ("Export directory").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import os

from .errors import IntegrityError, InvalidInputError
from .fileio import read_json, sha256_file, write_json_atomic

FORMAT = "convbert-export/1"
# the manifest's dynamic_conv.mode and padding values (export/dynamic_conv.py, export/exporter.py)
DYNAMIC_CONV_MODES = ("decomposed", "custom-op")
PADDING_MODES = ("exact", "transformers")
MANIFEST = "manifest.json"
# files that are written after the manifest (or are it) and so carry no checksum in it
UNCHECKED = {MANIFEST, "validation.json", "validation.md", "validation.html"}
# files a loader reads when present (tokenizer.json wins over vocab.txt): one the manifest does
# not list is refused at load, since it would change what is served
# the tokenizer files an export directory may hold (tokenization/files.py reads them; defined once here)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
LOADED = ("model.onnx", "model.onnx.data", "openvino_model.xml", "openvino_model.bin", "config.json",
          *TOKENIZER_FILES)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    axes: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: dict) -> "TensorSpec":
        return cls(name=data["name"], dtype=data["dtype"], axes=tuple(data["axes"]))

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "axes": list(self.axes)}


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest of an export directory."""

    task: str
    architecture: str
    opset: int
    dynamic_conv: dict
    padding: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    model: dict
    id2label: dict = field(default_factory=dict)
    precision: str = "fp32"
    transformations: tuple = ()
    versions: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    # False when outputs depend on batch-mates (int8 dynamic quantization scales activations
    # per batch): pipelines then warn when batch_size > 1
    batch_invariant: bool = True
    # the runtime the directory is made for: "onnxruntime" (model.onnx) or "openvino"
    # (openvino_model.xml/.bin); backend_options holds what that runtime needs to run it as
    # validated (OpenVINO: inference precision, dynamic quantization group size)
    backend: str = "onnxruntime"
    backend_options: dict = field(default_factory=dict)
    format: str = FORMAT

    @property
    def dynamic_conv_mode(self) -> str:
        return self.dynamic_conv.get("mode", "decomposed")

    @property
    def uses_custom_op(self) -> bool:
        return self.dynamic_conv_mode == "custom-op"

    @property
    def labels(self) -> list[str]:
        """Label names in id order (empty for tasks without labels)."""
        return [self.id2label[k] for k in sorted(self.id2label, key=int)]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["inputs"] = [spec.to_dict() for spec in self.inputs]
        data["outputs"] = [spec.to_dict() for spec in self.outputs]
        data["transformations"] = list(self.transformations)
        order = ["format", "task", "architecture", "id2label", "opset", "dynamic_conv", "padding",
                 "precision", "backend", "backend_options", "inputs", "outputs", "batch_invariant", "model", "source", "transformations", "versions", "files"]
        return {key: data[key] for key in order}

    @classmethod
    def from_dict(cls, data: dict, source: str = "manifest") -> "Manifest":
        if not isinstance(data, dict):
            raise InvalidInputError(
                f"{source}: expected a JSON object, got a {type(data).__name__}; re-export the model"
            )
        if data.get("format") != FORMAT:
            raise InvalidInputError(
                f"{source}: unsupported manifest format {data.get('format')!r}; expected {FORMAT!r} "
                "(re-export the model with this version of convbert-export)"
            )
        try:
            return cls(
                format=data["format"],
                task=data["task"],
                architecture=data["architecture"],
                opset=int(data["opset"]),
                dynamic_conv=dict(data["dynamic_conv"]),
                padding=data["padding"],
                inputs=tuple(TensorSpec.from_dict(d) for d in data["inputs"]),
                outputs=tuple(TensorSpec.from_dict(d) for d in data["outputs"]),
                model=dict(data["model"]),
                id2label={str(k): v for k, v in (data.get("id2label") or {}).items()},
                precision=data.get("precision", "fp32"),
                transformations=tuple(data.get("transformations", ())),
                versions=dict(data.get("versions", {})),
                files=dict(data.get("files", {})),
                source=dict(data.get("source", {})),
                batch_invariant=bool(data.get("batch_invariant", True)),
                backend=str(data.get("backend", "onnxruntime")),
                backend_options=dict(data.get("backend_options") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"{source}: malformed manifest ({exc!r}); re-export the model") from None


def load_manifest(export_dir: str | Path) -> Manifest:
    """Read ``export_dir/manifest.json``; a missing or malformed one gives a clear error."""
    path = Path(export_dir) / MANIFEST
    if not Path(export_dir).is_dir():
        raise InvalidInputError(f"export directory {str(export_dir)!r} does not exist")
    if not path.is_file():
        tasks = sorted(p.parent.name for p in Path(export_dir).glob(f"*/{MANIFEST}"))
        if tasks:
            raise InvalidInputError(
                f"{str(export_dir)!r} holds one export per task ({', '.join(tasks)}); "
                f"pass one of them, e.g. {str(Path(export_dir) / tasks[0])!r}"
            )
        raise InvalidInputError(
            f"{str(export_dir)!r} is not an export directory: no {MANIFEST}; "
            "create one with `convbert-export export`"
        )
    return Manifest.from_dict(read_json(path), source=str(path))


def file_checksums(directory: str | Path) -> dict[str, str]:
    """sha256 of every regular file under ``directory`` except the unchecked ones."""
    directory = Path(directory)
    return {
        str(path.relative_to(directory)): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and str(path.relative_to(directory)) not in UNCHECKED
    }


def verify_checksums(export_dir: str | Path, manifest: Manifest | None = None) -> list[str]:
    """Return a list of problems (missing, changed or unlisted files); empty when all match."""
    manifest = manifest or load_manifest(export_dir)
    actual = file_checksums(export_dir)
    problems = []
    for name, digest in manifest.files.items():
        if name not in actual:
            problems.append(f"{name}: listed in the manifest but missing")
        elif actual[name] != digest:
            problems.append(f"{name}: sha256 {actual[name][:12]}... differs from the manifest's {digest[:12]}...")
    for name in sorted(set(actual) - set(manifest.files)):
        problems.append(f"{name}: present but not listed in the manifest")
    return problems


def symlink_problems(directory: str | Path) -> list[str]:
    """Symlinks under ``directory`` whose target lies outside it (or is missing)."""
    root = Path(directory).resolve()
    problems = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            if target != root and root not in target.parents:
                problems.append(f"{path.relative_to(root)}: a symlink to {str(target)!r}, outside the directory")
    return problems


def verify_directory(directory: str | Path, manifest: Manifest | None = None, *,
                     required=None, manifest_sha256: str | None = None) -> Manifest:
    """Check every file a loader will read from ``directory`` against its manifest; return it.

    Refused, in one :class:`IntegrityError` naming each file: a listed file that is missing
    (only the names in ``required`` for a directory holding a subset, such as an engine
    directory; default: every listed file), changed or unreadable; a file a loader reads that
    the manifest does not list (see ``LOADED``); a symlink whose target leaves the directory;
    with ``manifest_sha256``, a manifest.json with another sha256 (an engine directory records
    the one it was built from). Runs before any session is created.
    """
    directory = Path(directory)
    problems = symlink_problems(directory)
    if manifest_sha256 is not None and sha256_file(directory / MANIFEST) != manifest_sha256:
        problems.append(f"{MANIFEST}: sha256 differs from the one recorded when the directory was built")
    manifest = manifest or load_manifest(directory)
    for name, digest in manifest.files.items():
        path = directory / name
        if not path.is_file():
            if required is None or name in required:
                problems.append(f"{name}: listed in the manifest but missing")
            continue
        try:
            actual = sha256_file(path)
        except OSError as exc:
            problems.append(f"{name}: unreadable ({exc.strerror})")
            continue
        if actual != digest:
            problems.append(f"{name}: sha256 {actual[:12]}... differs from the manifest's {digest[:12]}...")
    for name in LOADED:
        if name not in manifest.files and (directory / name).exists():
            problems.append(f"{name}: present but not listed in the manifest")
    if problems:
        raise IntegrityError(
            f"{str(directory)!r} does not match its manifest, refusing to load it: {'; '.join(problems)}. "
            "Re-export (or rebuild) it, or pass --no-verify (verify=False) only if you trust these files"
        )
    return manifest


def write_manifest(directory: str | Path, manifest: Manifest) -> None:
    write_json_atomic(Path(directory) / MANIFEST, manifest.to_dict())
