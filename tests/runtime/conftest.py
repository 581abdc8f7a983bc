"""Shared fixtures: tiny ConvBERT checkpoints saved by transformers, exported once per session by
the project's own exporter with ``padding: "transformers"`` (the model leaks padding like
transformers', so the pipeline must batch equal lengths only to stay exact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convbert_export.tasks import TASKS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

WORDS = (
    "the a an is was are of to in on and or but not it this that he she they we you i "
    "paris france london city capital river big small red blue green house dog cat runs ran "
    "john mary lives works at google new york who where what when why how many much . , ? ! "
    "hello world good bad movie film great terrible love hate play ##s ##ed ##ing ##er ##ly "
    "un ##happy happy token class ##ification question answer"
).split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS))

# transformers' class for each task: the architecture the task registry names
TASK_CLASSES = {name: spec.architecture for name, spec in TASKS.items()}
OUTPUTS = {
    "feature-extraction": ["last_hidden_state"],
    "fill-mask": ["logits"],
    "text-classification": ["logits"],
    "token-classification": ["logits"],
    "question-answering": ["start_logits", "end_logits"],
    "multiple-choice": ["logits"],
}
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def save_tokenizer(directory: Path) -> None:
    """The test vocabulary as a fast (tokenizers-backed) BERT tokenizer, saved by transformers.

    transformers 5's ``BertTokenizer`` is the tokenizers-backed class and takes the vocabulary
    as a dict (its ``BertTokenizerFast(vocab_file=...)`` ignores the file); transformers 4's
    ``BertTokenizer`` is the slow Python class, so there the fast class reads vocab.txt."""
    import transformers
    from transformers import BertTokenizer

    if int(transformers.__version__.split(".")[0]) >= 5:
        tok = BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, do_lower_case=True, model_max_length=64)
    else:
        from transformers import BertTokenizerFast

        directory.mkdir(parents=True, exist_ok=True)
        (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
        tok = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True, model_max_length=64)
    tok.save_pretrained(directory)


def make_checkpoint(task: str, directory: Path):
    """A tiny seeded transformers ConvBERT for ``task``, saved with save_pretrained."""
    from transformers import ConvBertConfig

    config = ConvBertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, embedding_size=32, conv_kernel_size=5,
        head_ratio=2, type_vocab_size=2, pad_token_id=0,
    )
    if task == "text-classification":
        config.id2label = {0: "NEGATIVE", 1: "POSITIVE", 2: "NEUTRAL"}
        config.label2id = {v: k for k, v in config.id2label.items()}
    if task == "token-classification":
        config.id2label = dict(enumerate(NER_LABELS))
        config.label2id = {v: k for k, v in config.id2label.items()}
    torch.manual_seed(0)
    model = getattr(transformers, TASK_CLASSES[task])(config).eval()
    with torch.no_grad():  # sharpen logits so argmaxes are not near-ties
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() == 2 and ("classifier" in name or "qa_outputs" in name):
                param.mul_(8.0)
    model.save_pretrained(directory)
    save_tokenizer(directory)
    # what transformers' pipelines see is the checkpoint as loaded back, not the object in memory
    return getattr(transformers, TASK_CLASSES[task]).from_pretrained(directory).eval()


def project_export(task: str, checkpoint: Path, output: Path) -> Path:
    """The checkpoint exported by the project's own exporter, with transformers' padding
    semantics (so the batching that keeps leaking models exact is what the tests exercise)."""
    from convbert_export.export import ExportSettings, ModelSource, export_tasks

    export_tasks(ModelSource.from_checkpoint(checkpoint), [task], output,
                 ExportSettings(padding="transformers", validate=False))
    return output


class Artifacts:
    """Per task: the transformers checkpoint dir, the model, and the export dir (built lazily)."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[str, tuple[Path, object, Path]] = {}

    def get(self, task: str):
        if task not in self._cache:
            checkpoint = self.root / task / "checkpoint"
            checkpoint.mkdir(parents=True)
            model = make_checkpoint(task, checkpoint)
            export = project_export(task, checkpoint, self.root / task / "export")
            self._cache[task] = (checkpoint, model, export)
        return self._cache[task]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    torch.set_num_threads(1)
    return Artifacts(tmp_path_factory.mktemp("runtime"))


@pytest.fixture(scope="session")
def hf_pipeline(artifacts):
    """transformers' pipeline for a task, on the saved checkpoint (cached)."""
    cache = {}

    def get(task: str):
        if task not in cache:
            checkpoint, _, _ = artifacts.get(task)
            cache[task] = transformers.pipeline(task, model=str(checkpoint), tokenizer=str(checkpoint), device="cpu")
        return cache[task]

    return get


def pipeline_for(artifacts, task: str, **kwargs):
    from convbert_export.runtime.pipeline import Pipeline
    from convbert_export.runtime.ort import OrtSettings

    _, _, export = artifacts.get(task)
    return Pipeline.from_export(export, settings=OrtSettings(intra_op_threads=1, inter_op_threads=1), **kwargs)


def assert_close_nested(ours, theirs, atol=1e-5, path="result"):
    """Dicts/lists equal; floats within atol."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: expected dict, got {type(ours).__name__}"
        assert set(ours) == set(theirs), f"{path}: keys {sorted(ours)} vs {sorted(theirs)}"
        for key in theirs:
            assert_close_nested(ours[key], theirs[key], atol, f"{path}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close_nested(a, b, atol, f"{path}[{i}]")
    elif isinstance(theirs, (float, np.floating)):
        assert abs(float(ours) - float(theirs)) <= atol, f"{path}: {ours} vs {theirs}"
    else:
        assert ours == theirs, f"{path}: {ours!r} vs {theirs!r}"
