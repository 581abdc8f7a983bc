"""Demo-preset exports for evaluate (no validation: evaluate is what is tested), from
tests/factories.py's process-wide cache."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("seqeval")
pytest.importorskip("sklearn")


class DemoExports:
    """``get(task)``: the demo export (directory named ``task``); ``int8(task)``: its dynamic-int8
    variant (directory named ``<task>-int8``). Both are the factories' cached exports."""

    def get(self, task: str):
        from factories import demo_export

        return demo_export(task)

    def int8(self, task: str):
        from factories import optimized_export

        return optimized_export(task, int8="dynamic")


@pytest.fixture(scope="session")
def demo_exports():
    import torch

    torch.set_num_threads(1)
    return DemoExports()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
