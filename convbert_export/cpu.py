"""What the CPU can do, read from ``/proc/cpuinfo`` (Linux): the instruction-set features that decide
which precisions run natively (AVX-512, VNNI for int8 dot products, BF16, AMX).

No imports beyond the standard library; on a system without ``/proc/cpuinfo`` every feature reads
as absent and ``model`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["CpuFeatures", "cpu_features", "FEATURE_FLAGS"]

# feature name shown to users -> the /proc/cpuinfo flags that provide it (any of them)
FEATURE_FLAGS: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "BF16": ("avx512_bf16", "amx_bf16"),
    "AMX": ("amx_tile",),
    "AMX-INT8": ("amx_int8",),
    "AMX-BF16": ("amx_bf16",),
}


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's model name, its logical core count and which of :data:`FEATURE_FLAGS` it has."""

    model: str
    cores: int
    flags: frozenset = field(default_factory=frozenset)

    def has(self, feature: str) -> bool:
        """Whether the CPU has ``feature`` (a key of :data:`FEATURE_FLAGS`)."""
        return any(flag in self.flags for flag in FEATURE_FLAGS[feature])

    @property
    def native_bf16(self) -> bool:
        """bf16 arithmetic in hardware (AVX512_BF16 or AMX-BF16); without it bf16 is emulated or refused."""
        return self.has("BF16")

    def features(self) -> dict[str, bool]:
        return {name: self.has(name) for name in FEATURE_FLAGS}

    def summary(self) -> str:
        """One line: ``model, N cores; AVX-512 yes, VNNI yes, BF16 yes, AMX no``."""
        shown = ("AVX-512", "VNNI", "BF16", "AMX")
        return f"{self.model}, {self.cores} cores; " + ", ".join(
            f"{name} {'yes' if self.has(name) else 'no'}" for name in shown
        )

    def to_dict(self) -> dict:
        return {"model": self.model, "cores": self.cores, "features": self.features()}


def cpu_features(cpuinfo: str = "/proc/cpuinfo") -> CpuFeatures:
    """Parse ``cpuinfo`` (the first processor's ``model name`` and ``flags``)."""
    model, flags = "unknown (no /proc/cpuinfo)", frozenset()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model.startswith("unknown"):
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return CpuFeatures(model=model, cores=os.cpu_count() or 1, flags=flags)
