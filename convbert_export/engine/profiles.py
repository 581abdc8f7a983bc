"""Optimization profiles: the shape ranges a TensorRT engine accepts, and how a request maps to them.

A profile gives every dynamic input axis a ``(min, opt, max)`` range. ConvBERT's inputs are
``(batch, sequence)`` or, for multiple choice, ``(batch, num_choices, sequence)``; the three
inputs always share one shape, so a profile is one range per axis, applied to every input.

This module is pure Python (no TensorRT, no numpy): the builder, the runner and the CLI share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..errors import InvalidInputError

#: Default ranges. The opt shape sits in the middle of what users run: single texts and small
#: batches of sentence-length inputs; TensorRT picks kernels for ``opt`` and accepts min..max.
DEFAULT_BATCH = (1, 8, 32)
DEFAULT_NUM_CHOICES = (1, 4, 8)
DEFAULT_OPT_SEQUENCE = 128

AXIS_ORDER = ("batch", "num_choices", "sequence")


@dataclass(frozen=True)
class AxisRange:
    """``min <= opt <= max``, all >= 1."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        values = (self.min, self.opt, self.max)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise InvalidInputError(f"axis range {values} must hold integers")
        if self.min < 1 or not self.min <= self.opt <= self.max:
            raise InvalidInputError(
                f"axis range min={self.min}, opt={self.opt}, max={self.max} is invalid; "
                "expected 1 <= min <= opt <= max"
            )

    def __contains__(self, value: int) -> bool:
        return self.min <= value <= self.max

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.min, self.opt, self.max)

    def __str__(self) -> str:
        return f"{self.min},{self.opt},{self.max}"


@dataclass(frozen=True)
class Profile:
    """One optimization profile: a range for batch, sequence and (multiple choice) num_choices."""

    batch: AxisRange
    sequence: AxisRange
    num_choices: AxisRange | None = None

    @property
    def axes(self) -> dict[str, AxisRange]:
        """Axis name -> range, in input order (batch, [num_choices,] sequence)."""
        out = {"batch": self.batch}
        if self.num_choices is not None:
            out["num_choices"] = self.num_choices
        out["sequence"] = self.sequence
        return out

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The (min, opt, max) input shapes TensorRT's ``set_shape`` takes."""
        ranges = list(self.axes.values())
        return tuple(tuple(getattr(r, k) for r in ranges) for k in ("min", "opt", "max"))  # type: ignore[return-value]

    def fits(self, shape: Sequence[int], *, ignore_batch: bool = False) -> bool:
        """Whether an input shape lies inside this profile (optionally on every axis but batch)."""
        ranges = list(self.axes.values())
        if len(shape) != len(ranges):
            return False
        return all(
            (ignore_batch and name == "batch") or dim in rng
            for (name, rng), dim in zip(self.axes.items(), shape)
        )

    def to_dict(self) -> dict[str, list[int]]:
        return {name: list(rng.as_tuple()) for name, rng in self.axes.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[int]]) -> "Profile":
        try:
            ranges = {name: AxisRange(*map(int, data[name])) for name in data}
            return cls(batch=ranges["batch"], sequence=ranges["sequence"],
                       num_choices=ranges.get("num_choices"))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"malformed profile {dict(data)!r} ({exc!r}); expected "
                "{'batch': [min, opt, max], 'sequence': [min, opt, max]}"
            ) from None

    def __str__(self) -> str:
        return ":".join(str(rng) for rng in self.axes.values())


def profile_syntax(multiple_choice: bool) -> str:
    """The ``--profile`` syntax for a task, for help and error messages."""
    if multiple_choice:
        return "BATCH_MIN,OPT,MAX:CHOICES_MIN,OPT,MAX:SEQ_MIN,OPT,MAX"
    return "BATCH_MIN,OPT,MAX:SEQ_MIN,OPT,MAX"


def parse_profile(text: str, *, multiple_choice: bool = False) -> Profile:
    """Parse ``--profile``: ``B:S`` (or ``B:C:S`` for multiple choice), each ``MIN,OPT,MAX`` or ``N``.

    ``N`` alone means a fixed size (min = opt = max = N). Examples: ``1,8,32:1,128,512``;
    ``1:128`` (one text of exactly 128 tokens); ``1,4,16:2,4,4:1,64,256`` (multiple choice).
    """
    syntax = profile_syntax(multiple_choice)
    names = ("batch", "num_choices", "sequence") if multiple_choice else ("batch", "sequence")
    parts = text.strip().split(":")
    if len(parts) != len(names):
        task_note = "multiple-choice" if multiple_choice else "this task"
        raise InvalidInputError(
            f"--profile {text!r}: expected {len(names)} ':'-separated parts ({', '.join(names)}) "
            f"for {task_note}, got {len(parts)}; use {syntax}, e.g. "
            + ("1,4,16:2,4,4:1,128,512" if multiple_choice else "1,8,32:1,128,512")
        )
    ranges = {}
    for name, part in zip(names, parts):
        fields = [f.strip() for f in part.split(",")]
        if len(fields) == 1:
            fields = fields * 3
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise InvalidInputError(
                f"--profile {text!r}: the {name} part {part!r} must be MIN,OPT,MAX or a single "
                f"size N (positive integers); use {syntax}"
            )
        lo, opt, hi = (int(f) for f in fields)
        if lo < 1 or not lo <= opt <= hi:
            raise InvalidInputError(
                f"--profile {text!r}: the {name} range min={lo}, opt={opt}, max={hi} is invalid; "
                "expected 1 <= MIN <= OPT <= MAX"
            )
        ranges[name] = AxisRange(lo, opt, hi)
    return Profile(batch=ranges["batch"], sequence=ranges["sequence"],
                   num_choices=ranges.get("num_choices"))


def default_profiles(max_position_embeddings: int, multiple_choice: bool) -> tuple[Profile, ...]:
    """One profile: batch 1..32 (opt 8), sequence 1..max_position_embeddings (opt 128 or less),
    and for multiple choice num_choices 1..8 (opt 4)."""
    seq_max = int(max_position_embeddings)
    sequence = AxisRange(1, min(DEFAULT_OPT_SEQUENCE, seq_max), seq_max)
    choices = AxisRange(*DEFAULT_NUM_CHOICES) if multiple_choice else None
    return (Profile(batch=AxisRange(*DEFAULT_BATCH), sequence=sequence, num_choices=choices),)


def check_profiles(profiles: Iterable[Profile], *, multiple_choice: bool,
                   max_position_embeddings: int | None, task: str) -> tuple[Profile, ...]:
    """Refuse profiles that do not match the task's axes or exceed the model's positions."""
    profiles = tuple(profiles)
    if not profiles:
        raise InvalidInputError("expected at least one optimization profile, got none")
    for index, profile in enumerate(profiles):
        if multiple_choice and profile.num_choices is None:
            raise InvalidInputError(
                f"profile {index} ({profile}) has no num_choices range, but task {task!r} has "
                f"inputs (batch, num_choices, sequence); use {profile_syntax(True)}"
            )
        if not multiple_choice and profile.num_choices is not None:
            raise InvalidInputError(
                f"profile {index} ({profile}) has a num_choices range, but task {task!r} has "
                f"inputs (batch, sequence); use {profile_syntax(False)}"
            )
        if max_position_embeddings is not None and profile.sequence.max > max_position_embeddings:
            raise InvalidInputError(
                f"profile {index} ({profile}): sequence max {profile.sequence.max} exceeds the "
                f"model's max_position_embeddings {max_position_embeddings}; use a sequence max "
                f"<= {max_position_embeddings}"
            )
    return profiles


@dataclass(frozen=True)
class Chunk:
    """One engine call of a request: rows ``start:stop`` run on ``profile``, padded to ``batch``.

    ``batch > stop - start`` when the profile's minimum batch is larger than the rows left: the
    chunk is padded with copies of its last row (rows are independent, so this is exact) and
    the extra outputs are dropped.
    """

    profile: int
    start: int
    stop: int
    batch: int


def plan_chunks(shape: Sequence[int], profiles: Sequence[Profile]) -> list[Chunk]:
    """Map an input shape onto the profiles: run it whole, or split it along batch.

    Among the profiles whose non-batch axes contain the shape, the one taking the most rows per
    call is preferred (ties: the smaller sequence max, whose kernels suit the shape more closely).
    Raises InvalidInputError naming every profile when no profile accepts the non-batch axes.
    """
    shape = tuple(int(d) for d in shape)
    candidates = [i for i, p in enumerate(profiles) if p.fits(shape, ignore_batch=True)]
    if not candidates:
        names = list(profiles[0].axes) if profiles else ["batch", "sequence"]
        ranges = "; ".join(
            f"profile {i}: " + ", ".join(f"{n} {r.min}..{r.max}" for n, r in p.axes.items())
            for i, p in enumerate(profiles)
        )
        raise InvalidInputError(
            f"input shape {shape} (axes {tuple(names)}) is outside every optimization profile of "
            f"this engine ({ranges}); truncate the input or rebuild the engine with a "
            "--profile that covers it"
        )
    batch = shape[0]
    whole = [i for i in candidates if batch in profiles[i].batch]
    if whole:
        best = min(whole, key=lambda i: (profiles[i].batch.max, profiles[i].sequence.max))
        return [Chunk(best, 0, batch, batch)]
    # split: use the profile taking the most rows per call
    best = max(candidates, key=lambda i: (profiles[i].batch.max, -profiles[i].sequence.max))
    chunks = []
    step = profiles[best].batch.max
    for start in range(0, batch, step):
        stop = min(batch, start + step)
        rows = stop - start
        chunks.append(Chunk(best, start, stop, max(rows, profiles[best].batch.min)))
    return chunks
