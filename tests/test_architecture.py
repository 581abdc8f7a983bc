"""The import rules docs/ARCHITECTURE.md relies on ("Import rules"), checked on the source:
every import statement, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convbert_export"


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [alias.name for alias in node.names]
            found.append((module, names, node.lineno))
            found += [(f"{module}.{name}", [], node.lineno) for name in names]  # `from pkg import submodule`
    return found


def _sources(directory: Path):
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _violations(paths, forbidden) -> list[str]:
    return [f"{_rel(path)}:{line} imports {module}" for path in paths for module, _, line in _imports(path)
            if any(module == f or module.startswith(f + ".") for f in forbidden)]


def test_reference_model_imports_nothing_from_convbert_export():
    assert _violations(_sources(ROOT / "reference_model"), ["convbert_export"]) == []


def test_runtime_never_imports_export_optimize_validation_or_the_cli():
    forbidden = [f"convbert_export.{name}" for name in ("export", "optimize", "validate", "bench", "commands", "cli")]
    assert _violations(_sources(PACKAGE / "runtime"), forbidden) == []


def test_serving_code_imports_torch_only_in_the_torch_reference_runner():
    modules = [PACKAGE / name for name in ("batching.py", "tasks.py", "inputs.py", "manifest.py", "errors.py",
                                           "fileio.py", "records.py", "predict.py")]
    missing = [_rel(path) for path in modules if not path.is_file()]
    assert missing == [], f"serving modules renamed or gone; update this rule: {missing}"
    serving = _sources(PACKAGE / "runtime") + _sources(PACKAGE / "tokenization") + modules
    assert any(_rel(p).startswith("convbert_export/tokenization/") for p in serving)
    allowed = {"convbert_export/runtime/torch_ref.py"}
    found = _violations([p for p in serving if _rel(p) not in allowed], ["torch", "reference_model"])
    assert found == []


def test_transformers_is_test_only():
    assert _violations(_sources(PACKAGE) + _sources(ROOT / "reference_model"), ["transformers"]) == []


def test_model_sessions_come_from_the_runner_path():
    """Validation and the benchmark run models through runtime/factory.py, never their own
    onnxruntime session (the benchmark's GEMM floor times bare MatMuls, not a model)."""
    allowed = {"convbert_export/runtime/ort.py", "convbert_export/bench/floor.py"}
    found = []
    for path in _sources(PACKAGE):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "InferenceSession" and _rel(path) not in allowed:
                found.append(f"{_rel(path)}:{node.lineno}")
    assert found == []


def test_no_private_name_is_imported_across_packages():
    """``from ..engine.builder import _make_logger`` couples two packages through a private helper;
    a name another package needs is public."""
    found = []
    for path in _sources(PACKAGE):
        own = path.relative_to(ROOT).parts[:2]
        for module, names, line in _imports(path):
            if not module.startswith("convbert_export.") or tuple(module.split(".")[:2]) == own:
                continue
            found += [f"{_rel(path)}:{line} imports {module}.{name}" for name in names
                      if name.startswith("_") and not name.startswith("__")]
    assert found == []
