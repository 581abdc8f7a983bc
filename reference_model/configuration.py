"""ConvBertConfig: transformers' ConvBERT configuration as a plain, validated dataclass.

Field names and defaults mirror ``transformers.ConvBertConfig`` (and the parts of
``PreTrainedConfig`` a ConvBERT checkpoint uses: labels, ``architectures``, token ids,
``tie_word_embeddings``), so a ``config.json`` written by transformers loads here and one written
here loads in transformers. Unknown keys are ignored; impossible values raise
:class:`reference_model.errors.ConfigError` naming the field, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

MODEL_TYPE = "convbert"
CONFIG_NAME = "config.json"

# Activation names accepted for ``hidden_act`` / ``summary_activation``: the entries of
# transformers' ACT2FN that need no parameters. modeling.ACTIVATIONS implements each of them
# (a test checks the two lists agree and the formulas match transformers').
SUPPORTED_ACTIVATIONS = (
    "gelu",
    "gelu_python",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_python_tanh",
    "gelu_fast",
    "gelu_accurate",
    "gelu_10",
    "quick_gelu",
    "relu",
    "relu2",
    "relu6",
    "leaky_relu",
    "silu",
    "swish",
    "tanh",
    "sigmoid",
    "mish",
    "hardswish",
    "linear",
    "laplace",
)

SUMMARY_TYPES = ("last", "first", "mean", "cls_index")

# Keys whose presence means the checkpoint wants to run its own Python code.
_REMOTE_CODE_KEYS = ("auto_map", "trust_remote_code")


@dataclass
class ConvBertConfig:
    """The hyper-parameters of a ConvBERT model (transformers' names and defaults).

    ``num_labels`` follows transformers' ``PreTrainedConfig``: it defaults to 2 with labels
    ``LABEL_0, LABEL_1``; when ``id2label`` is given, ``num_labels`` is its length. ``id2label``
    has int keys in memory and string keys in JSON.

    The ``summary_*`` fields are read by the multiple-choice head (transformers reads them with
    ``getattr``): the default ``summary_type="last"`` pools the LAST position, with no projection
    and no activation.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2
    embedding_size: int = 768
    head_ratio: int = 2
    conv_kernel_size: int = 9
    num_groups: int = 1
    classifier_dropout: float | None = None
    tie_word_embeddings: bool = True
    is_decoder: bool = False
    add_cross_attention: bool = False
    # PreTrainedConfig fields a checkpoint carries.
    architectures: list[str] | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    num_labels: int | None = None
    problem_type: str | None = None
    # Sequence summary (multiple choice); None = transformers' getattr default.
    summary_type: str | None = None
    summary_use_proj: bool | None = None
    summary_proj_to_labels: bool | None = None
    summary_activation: str | None = None
    summary_first_dropout: float | None = None
    summary_last_dropout: float | None = None

    def __post_init__(self) -> None:
        self._normalize_labels()
        self.validate()

    # ------------------------------------------------------------------ labels
    def _normalize_labels(self) -> None:
        if self.id2label is not None:
            if not isinstance(self.id2label, dict) or not self.id2label:
                raise ConfigError(
                    f"config field 'id2label': expected a non-empty mapping of label ids to names, "
                    f"got {self.id2label!r}"
                )
            try:
                id2label = {int(key): str(value) for key, value in self.id2label.items()}
            except (TypeError, ValueError):
                raise ConfigError(
                    f"config field 'id2label': expected integer keys (JSON strings like \"0\"), "
                    f"got keys {list(self.id2label)!r}"
                ) from None
            if sorted(id2label) != list(range(len(id2label))):
                raise ConfigError(
                    f"config field 'id2label': expected keys 0..{len(id2label) - 1}, "
                    f"got {sorted(id2label)}"
                )
            if self.num_labels is not None and self.num_labels != len(id2label):
                raise ConfigError(
                    f"config field 'num_labels': expected {len(id2label)} (the length of id2label), "
                    f"got {self.num_labels}; drop num_labels or fix id2label"
                )
            self.id2label = dict(sorted(id2label.items()))
        else:
            count = 2 if self.num_labels is None else self.num_labels
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigError(f"config field 'num_labels': expected an integer >= 1, got {count!r}")
            self.id2label = {i: f"LABEL_{i}" for i in range(count)}
            self.label2id = None
        self.num_labels = len(self.id2label)
        if self.label2id is None or len(self.label2id) != self.num_labels:
            self.label2id = {name: i for i, name in self.id2label.items()}
        else:
            self.label2id = {str(name): int(i) for name, i in self.label2id.items()}

    # -------------------------------------------------------------- validation
    @property
    def effective_num_heads(self) -> int:
        """Self-attention heads after ``head_ratio`` (transformers' rule: at least 1)."""
        heads = self.num_attention_heads // self.head_ratio
        return heads if heads >= 1 else 1

    def validate(self) -> None:
        """Raise ConfigError for any value the model cannot be built with."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
            "embedding_size",
            "head_ratio",
            "conv_kernel_size",
            "num_groups",
        ):
            _check_positive_int(name, getattr(self, name))
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                     "summary_first_dropout", "summary_last_dropout"):
            value = getattr(self, name)
            if value is None and name not in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(f"config field {name!r}: expected a probability in [0, 1], got {value!r}")
        for name in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"config field {name!r}: expected a positive number, got {value!r}")
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"config field 'hidden_act': expected one of {', '.join(SUPPORTED_ACTIVATIONS)}, "
                f"got {self.hidden_act!r}"
            )
        if self.conv_kernel_size % 2 == 0:
            raise ConfigError(
                f"config field 'conv_kernel_size': expected an odd kernel size >= 1, "
                f"got {self.conv_kernel_size}"
            )
        heads = self.effective_num_heads
        if self.hidden_size % (2 * heads) != 0:
            raise ConfigError(
                f"config field 'hidden_size': expected a multiple of 2 * {heads} (two halves, "
                f"attention and convolution, of {heads} head(s) = num_attention_heads "
                f"{self.num_attention_heads} // head_ratio {self.head_ratio}), got {self.hidden_size}"
            )
        for name in ("hidden_size", "intermediate_size"):
            if getattr(self, name) % self.num_groups != 0:
                raise ConfigError(
                    f"config field 'num_groups': expected a divisor of {name} "
                    f"({getattr(self, name)}), got {self.num_groups}"
                )
        if self.pad_token_id is not None:
            if isinstance(self.pad_token_id, bool) or not isinstance(self.pad_token_id, int) or not (
                0 <= self.pad_token_id < self.vocab_size
            ):
                raise ConfigError(
                    f"config field 'pad_token_id': expected an id in 0..{self.vocab_size - 1} or null, "
                    f"got {self.pad_token_id!r}"
                )
        if self.add_cross_attention:
            raise ConfigError(
                "config field 'add_cross_attention': expected false (ConvBERT encoders here have no "
                "cross-attention), got true"
            )
        if self.summary_type is not None and self.summary_type not in SUMMARY_TYPES:
            raise ConfigError(
                f"config field 'summary_type': expected one of {', '.join(SUMMARY_TYPES)}, "
                f"got {self.summary_type!r}"
            )
        if self.summary_activation is not None and self.summary_activation not in SUPPORTED_ACTIVATIONS:
            raise ConfigError(
                f"config field 'summary_activation': expected null or one of "
                f"{', '.join(SUPPORTED_ACTIVATIONS)}, got {self.summary_activation!r}"
            )
        if self.architectures is not None and (
            not isinstance(self.architectures, list) or not all(isinstance(a, str) for a in self.architectures)
        ):
            raise ConfigError(
                f"config field 'architectures': expected a list of class names, got {self.architectures!r}"
            )

    # ------------------------------------------------------------ conversions
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ConvBertConfig":
        """Build a config from a ``config.json`` mapping; unknown keys are ignored.

        Raises ConfigError for a non-ConvBERT ``model_type``, for remote code (``auto_map``,
        ``trust_remote_code``) and for impossible values.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a JSON object, got {type(data).__name__}")
        for key in _REMOTE_CODE_KEYS:
            if data.get(key):
                raise ConfigError(
                    f"config key {key!r}: remote code is not supported (expected no {key!r}, got "
                    f"{data[key]!r}); use a plain ConvBERT checkpoint whose config.json has "
                    f"model_type \"convbert\" and no {key!r}"
                )
        model_type = data.get("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise ConfigError(
                f"config field 'model_type': expected {MODEL_TYPE!r}, got {model_type!r}; this tool "
                f"only handles ConvBERT checkpoints"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "ConvBertConfig":
        """Read a ``config.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: expected {path}, got no such file") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"config file {path} is not valid JSON: {err}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "ConvBertConfig":
        """Read ``<directory>/config.json``."""
        return cls.from_json(Path(directory) / CONFIG_NAME)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` mapping (string label ids, ``model_type`` "convbert").

        ``num_labels`` is not written (transformers derives it from ``id2label``); ``summary_*``
        fields are written only when set.
        """
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "num_labels":
                continue
            if f.name.startswith("summary_") and value is None:
                continue
            if f.name == "id2label":
                value = {str(key): name for key, name in value.items()}
            data[f.name] = value
        data["model_type"] = MODEL_TYPE
        return data

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``<directory>/config.json`` (creating the directory); returns its path."""
        from .loading import write_atomic

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CONFIG_NAME
        write_atomic(path, lambda tmp: Path(tmp).write_text(self.to_json_string(), encoding="utf-8"))
        return path

    def replace(self, **changes: Any) -> "ConvBertConfig":
        """A validated copy with some fields changed (labels recomputed when num_labels changes)."""
        data = dataclasses.asdict(self)
        if "num_labels" in changes and "id2label" not in changes:
            data["id2label"] = None
            data["label2id"] = None
        data.update(changes)
        return type(self)(**data)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"config field {name!r}: expected a positive integer, got {value!r}")
