"""Where an export's reference weights come from (:class:`ModelSource`: a checkpoint directory,
a Hub model id or a preset) and which tasks an export writes (``_resolve_tasks``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import tasks as task_registry  # read at call time: a task added to the registry is seen
from ..errors import InvalidInputError
from ..fileio import read_json
from ..tasks import get_task, task_for_architecture


@dataclass
class ModelSource:
    """Where the reference weights come from: a checkpoint directory or a preset."""

    checkpoint: Path | None = None
    preset: str | None = None
    seed: int = 0
    architectures: list = field(default_factory=list)
    hub: dict | None = None  # {"repo_id", "revision", "commit"} for a Hub model id

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "ModelSource":
        """A checkpoint directory, or a Hugging Face Hub id (``org/name[@revision]``, see
        :mod:`convbert_export.hub`; a local directory of the same name wins)."""
        from ..hub import resolve_checkpoint

        path, hub = resolve_checkpoint(path)
        config = path / "config.json"
        if not path.is_dir():
            raise InvalidInputError(f"checkpoint directory {str(path)!r} does not exist")
        if not config.is_file():
            raise InvalidInputError(f"{str(path)!r} has no config.json; expected a HuggingFace-format checkpoint directory")
        data = read_json(config)
        if not isinstance(data, dict):
            raise InvalidInputError(f"{config}: expected a JSON object, got a {type(data).__name__}; "
                                    "expected a HuggingFace-format config.json")
        architectures = data.get("architectures") or []
        if isinstance(architectures, str):
            architectures = [architectures]
        return cls(checkpoint=path.resolve(), architectures=list(architectures), hub=hub)

    @classmethod
    def from_preset(cls, name: str, seed: int = 0) -> "ModelSource":
        from reference_model import PRESETS

        from ..errors import lookup

        lookup(PRESETS, name, "preset")
        return cls(preset=name, seed=seed)

    @classmethod
    def from_options(cls, checkpoint=None, preset: str | None = None, seed: int = 0) -> "ModelSource":
        """The source the CLI's ``--model DIR`` / ``--preset NAME [--seed N]`` name (exactly one)."""
        if bool(checkpoint) == bool(preset):
            raise InvalidInputError("pass exactly one of --model DIR or --preset NAME")
        return cls.from_checkpoint(checkpoint) if checkpoint else cls.from_preset(preset, seed)

    def default_tasks(self) -> list[str]:
        if self.preset:
            raise InvalidInputError("a preset has every head: pass --task TASK (or --task all)")
        if not self.architectures:
            raise InvalidInputError(
                f"{self.checkpoint}/config.json lists no `architectures`; pass --task (one of: {', '.join(task_registry.TASKS)})"
            )
        return [task_for_architecture(a).name for a in self.architectures]

    def load(self, task: str):
        import reference_model

        from ..errors import reference_errors

        architecture = get_task(task).architecture  # the reference model knows heads, not our tasks
        with reference_errors():
            if self.preset:
                return reference_model.from_preset(self.preset, architecture, seed=self.seed)
            return reference_model.load(self.checkpoint, task=architecture)

    def manifest_entry(self) -> dict:
        if self.preset:
            return {"preset": self.preset, "seed": self.seed}
        entry = {"checkpoint": str(self.checkpoint)}
        if self.hub:
            entry["hub"] = dict(self.hub)
        return entry

    def tokenizer_dir(self) -> tuple[Path, bool]:
        """The directory to copy tokenizer files from, and whether it is the demo fallback."""
        from ..tokenization import demo_vocab_dir

        if self.checkpoint and any((self.checkpoint / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
            return self.checkpoint, False
        return Path(demo_vocab_dir()), True


def _resolve_tasks(source: ModelSource, tasks) -> list[str]:
    if tasks is None or tasks == [] or tasks == ():
        return list(dict.fromkeys(source.default_tasks()))
    if isinstance(tasks, str):
        tasks = [tasks]
    if "all" in tasks:
        if source.preset:
            return list(task_registry.TASKS)
        # a checkpoint has the weights of its own head(s), and every head checkpoint carries the
        # base model: "all" is those heads plus feature-extraction
        return list(dict.fromkeys(["feature-extraction", *source.default_tasks()]))
    names = []
    for task in tasks:
        names.append(get_task(task).name)
    return list(dict.fromkeys(names))
