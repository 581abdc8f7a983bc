"""Demo-preset exports (no validation: evaluate is what is tested), built once per session."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("seqeval")
pytest.importorskip("sklearn")


class DemoExports:
    def __init__(self, root):
        self.root = root
        self._cache = {}

    def get(self, task: str):
        if task not in self._cache:
            import reference_model
            from convbert_export.export import export

            model = reference_model.from_preset("demo", task, seed=0)
            export(model, task, self.root / task, validate=False)
            self._cache[task] = self.root / task
        return self._cache[task]

    def int8(self, task: str):
        key = f"{task}-int8"
        if key not in self._cache:
            from convbert_export.export.optimize import OptimizeSettings, optimize

            optimize(self.get(task), self.root / key, OptimizeSettings(int8="dynamic", validate=False))
            self._cache[key] = self.root / key
        return self._cache[key]


@pytest.fixture(scope="session")
def demo_exports(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return DemoExports(tmp_path_factory.mktemp("evaluate"))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
