"""Model ids from the Hugging Face Hub (issue 11): ``org/name`` and ``org/name@revision`` wherever
a checkpoint directory is accepted, resolved by huggingface_hub from its cache (tested offline,
HF_HUB_OFFLINE=1, on a cache laid out as huggingface_hub lays it out)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def _checkpoint(directory: Path, seed: int) -> None:
    import torch

    import reference_model
    from reference_model.presets import demo_vocab_size, initialize_weights
    from convbert_export.tokenization import demo_vocab_dir

    config = reference_model.ConvBertConfig(
        vocab_size=demo_vocab_size(), embedding_size=16, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, conv_kernel_size=3, max_position_embeddings=32,
        architectures=["ConvBertForSequenceClassification"])
    model = reference_model.ConvBertForSequenceClassification(config)
    initialize_weights(model, config.initializer_range, torch.Generator().manual_seed(seed))
    model.save_pretrained(directory)
    shutil.copyfile(Path(demo_vocab_dir()) / "vocab.txt", directory / "vocab.txt")


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    """HF_HUB_CACHE with YituTech/conv-bert-tiny at two commits: refs/main -> COMMIT, and
    OTHER reachable only by its hash (files are symlinks into blobs/, as huggingface_hub writes)."""
    from convbert_export.fileio import sha256_file

    cache = tmp_path_factory.mktemp("hf-cache")
    repo = cache / "models--YituTech--conv-bert-tiny"
    for commit, seed in ((COMMIT, 0), (OTHER, 1)):
        staging = tmp_path_factory.mktemp("staging")
        _checkpoint(staging, seed)
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (repo / "blobs").mkdir(exist_ok=True)
        for file in staging.iterdir():
            blob = repo / "blobs" / sha256_file(file)
            shutil.copyfile(file, blob)
            (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


@pytest.fixture
def offline(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub_cache


def test_resolve_hub_ids_offline(offline, tmp_path, monkeypatch):
    from convbert_export.hub import resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    path, info = resolve_checkpoint("YituTech/conv-bert-tiny")
    assert path.name == COMMIT and (path / "config.json").is_file()
    assert info == {"repo_id": "YituTech/conv-bert-tiny", "revision": "main", "commit": COMMIT}
    path, info = resolve_checkpoint(f"YituTech/conv-bert-tiny@{OTHER}")
    assert path.name == OTHER and info["commit"] == OTHER and info["revision"] == OTHER
    # a local directory of the same name wins
    local = tmp_path / "YituTech" / "conv-bert-tiny"
    local.mkdir(parents=True)
    path, info = resolve_checkpoint("YituTech/conv-bert-tiny")
    assert info is None and path == Path("YituTech/conv-bert-tiny")


def test_uncached_id_is_one_line_exit_2(offline, tmp_path):
    code = "import sys; from convbert_export.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for model in ("YituTech/not-cached", "YituTech/conv-bert-tiny@v9.9"):
        result = subprocess.run([sys.executable, "-c", code, "export", "--model", model, "-o", str(tmp_path / "x"),
                                 "--no-validate", "-q"], capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and model in result.stderr and "Hub" in result.stderr, result.stderr


def test_export_a_hub_id_records_repo_and_commit(offline, tmp_path):
    from convbert_export.export import ExportSettings, ModelSource, export_tasks

    export_tasks(ModelSource.from_checkpoint("YituTech/conv-bert-tiny"), None, tmp_path / "clf",
                 ExportSettings(validate=True))
    manifest = json.loads((tmp_path / "clf" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"]["hub"] == {"repo_id": "YituTech/conv-bert-tiny", "revision": "main", "commit": COMMIT}
    assert manifest["source"]["checkpoint"].endswith(COMMIT)
    report = json.loads((tmp_path / "clf" / "validation.json").read_text(encoding="utf-8"))
    assert report["passed"], report["failures"]


def test_reference_runner_takes_a_hub_id(offline):
    import numpy as np

    from convbert_export.runtime.torch_ref import TorchRunner

    with TorchRunner(f"YituTech/conv-bert-tiny@{OTHER}", task="text-classification") as runner:
        out = runner.run({"input_ids": np.array([[2, 10, 11, 3]]), "attention_mask": np.ones((1, 4), np.int64),
                          "token_type_ids": np.zeros((1, 4), np.int64)})
    assert out["logits"].shape == (1, 2) and np.isfinite(out["logits"]).all()
