"""``engine.json``: what an engine directory holds, and the checks made before a plan is loaded.

A serialized TensorRT engine is executable code for one TensorRT version (and, for TensorRT, one
GPU architecture). Before a runner deserializes ``model.plan`` it reads ``engine.json`` and
refuses a plan whose backend, version, GPU or sha256 does not match, with a message saying to
rebuild. This module imports neither TensorRT nor CUDA.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..fileio import read_json
from .profiles import Profile

ENGINE_FORMAT = "convbert-export-engine/1"
ENGINE_JSON = "engine.json"
PLAN = "model.plan"
ANY_RTX = "any RTX"


@dataclass(frozen=True)
class EngineInfo:
    """The parsed ``engine.json``."""

    backend: str
    backend_version: str
    task: str
    precision: str
    dynamic_conv: str
    target: dict
    profiles: tuple[Profile, ...]
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    plan_sha256: str
    plan_bytes: int
    plugin: dict | None = None
    model: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    build: dict = field(default_factory=dict)
    format: str = ENGINE_FORMAT

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "backend": self.backend,
            "backend_version": self.backend_version,
            "task": self.task,
            "precision": self.precision,
            "dynamic_conv": self.dynamic_conv,
            "target": self.target,
            "profiles": [p.to_dict() for p in self.profiles],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "plan": {"file": PLAN, "sha256": self.plan_sha256, "bytes": self.plan_bytes},
            "plugin": self.plugin,
            "model": self.model,
            "source": self.source,
            "build": self.build,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = ENGINE_JSON) -> "EngineInfo":
        if not isinstance(data, dict):
            raise InvalidInputError(
                f"{source}: expected a JSON object, got a {type(data).__name__}; rebuild the engine with "
                "`convbert-export build-engine`"
            )
        if data.get("format") != ENGINE_FORMAT:
            raise InvalidInputError(
                f"{source}: unsupported engine format {data.get('format')!r}; expected "
                f"{ENGINE_FORMAT!r}; rebuild the engine with `convbert-export build-engine`"
            )
        try:
            info = cls(
                backend=data["backend"],
                backend_version=data["backend_version"],
                task=data["task"],
                precision=data["precision"],
                dynamic_conv=data["dynamic_conv"],
                target=dict(data["target"]),
                profiles=tuple(Profile.from_dict(p) for p in data["profiles"]),
                inputs=tuple(dict(d) for d in data["inputs"]),
                outputs=tuple(dict(d) for d in data["outputs"]),
                plan_sha256=data["plan"]["sha256"],
                plan_bytes=int(data["plan"]["bytes"]),
                plugin=data.get("plugin"),
                model=dict(data.get("model") or {}),
                source=dict(data.get("source") or {}),
                build=dict(data.get("build") or {}),
            )
            if not info.profiles:
                raise ValueError("'profiles' is empty; an engine has at least one optimization profile")
            for spec in info.inputs + info.outputs:  # names and numpy dtypes the runner binds
                if not isinstance(spec["name"], str):
                    raise ValueError(f"tensor name {spec['name']!r} is not a string")
                np.dtype(spec["dtype"])
                tuple(spec["axes"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(
                f"{source}: malformed engine.json ({exc}); rebuild the engine with "
                "`convbert-export build-engine`"
            ) from None
        return info


def read_engine_info(engine_dir: str | Path) -> EngineInfo:
    """Read ``engine_dir/engine.json`` with a clear error when it is missing or malformed."""
    engine_dir = Path(engine_dir)
    path = engine_dir / ENGINE_JSON
    if not engine_dir.is_dir():
        raise InvalidInputError(f"engine directory {str(engine_dir)!r} does not exist")
    if not path.is_file():
        raise InvalidInputError(
            f"{str(engine_dir)!r} is not an engine directory: no {ENGINE_JSON}; a plan without "
            "its engine.json is refused (a serialized engine is executable code); build one with "
            "`convbert-export build-engine EXPORT_DIR --output DIR`"
        )
    return EngineInfo.from_dict(read_json(path, fix="rebuild the engine"), source=str(path))


def read_verified_plan(engine_dir: str | Path, info: EngineInfo) -> bytes:
    """Read ``model.plan`` and check its size and sha256 against ``engine.json``.

    Nothing is deserialized here: a plan that does not match is refused before TensorRT sees it.
    """
    path = Path(engine_dir) / PLAN
    if not path.is_file():
        raise InvalidInputError(
            f"engine directory {str(engine_dir)!r} has no {PLAN}; rebuild the engine with "
            "`convbert-export build-engine`"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != info.plan_bytes or digest != info.plan_sha256:
        raise InvalidInputError(
            f"{path}: the plan does not match engine.json (expected {info.plan_bytes} bytes with "
            f"sha256 {info.plan_sha256[:16]}..., got {len(data)} bytes with sha256 "
            f"{digest[:16]}...); refusing to deserialize a modified or foreign plan. Rebuild "
            "the engine with `convbert-export build-engine`"
        )
    return data


def check_backend(info: EngineInfo, backend: str, installed_version: str) -> None:
    """Refuse a plan built by another backend or another version of it."""
    if info.backend != backend:
        raise InvalidInputError(
            f"engine was built with backend {info.backend!r}, expected {backend!r}; rebuild it "
            f"with `convbert-export build-engine --backend {backend}`"
        )
    if info.backend_version != installed_version:
        raise InvalidInputError(
            f"engine was built with {backend} {info.backend_version}, but {installed_version} is "
            "installed; a plan only loads in the exact version that built it. Rebuild it with "
            "`convbert-export build-engine`, or install the matching version"
        )


def check_gpu(info: EngineInfo, gpu_name: str, compute_capability: tuple[int, int]) -> None:
    """Refuse a plan built for another GPU architecture.

    TensorRT plans are built for one compute capability; TensorRT for RTX plans built for
    "any RTX" run on Turing (7.5) or newer, or on the compute capabilities listed at build time.
    """
    target = info.target
    have = f"{compute_capability[0]}.{compute_capability[1]}"
    if target.get("gpu") == ANY_RTX:
        allowed = target.get("compute_capabilities") or []
        if allowed and have not in allowed:
            raise InvalidInputError(
                f"engine was built for compute capabilities {allowed}, this GPU ({gpu_name}) is "
                f"{have}; rebuild the engine on or for this GPU"
            )
        if tuple(compute_capability) < (7, 5):
            raise InvalidInputError(
                f"TensorRT for RTX needs a Turing (compute capability 7.5) or newer GPU, got "
                f"{gpu_name} ({have}); use --backend tensorrt"
            )
        return
    want = target.get("compute_capability")
    if want != have:
        raise InvalidInputError(
            f"engine was built for {target.get('gpu')!r} (compute capability {want}), this GPU "
            f"is {gpu_name!r} ({have}); rebuild the engine on this GPU with "
            "`convbert-export build-engine`"
        )
