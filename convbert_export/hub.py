"""Checkpoints named by Hugging Face Hub model id: ``org/name`` or ``org/name@revision``.

:func:`resolve_checkpoint` turns what a user passed as a checkpoint into a local directory: an
existing local path always wins (``org/name`` may be a directory of that name); otherwise an id
is fetched with ``huggingface_hub.snapshot_download`` (config, tokenizer and weight files only),
which honours its cache (``HF_HUB_CACHE``/``HF_HOME``), ``HF_TOKEN`` and ``HF_HUB_OFFLINE``. The
repo id, the revision asked for and the commit it resolved to are returned for the manifest.
huggingface_hub belongs to the ``export`` extra; it is imported only for an id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidInputError

__all__ = ["resolve_checkpoint", "is_hub_id", "ALLOW_PATTERNS"]

# what a checkpoint needs: config, tokenizer, weights (safetensors first; .bin only as loading does)
ALLOW_PATTERNS = [
    "config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
    "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
    "pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin",
]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9_./-]+)?$")


def is_hub_id(spec: str) -> bool:
    """Whether ``spec`` has the shape of a Hub model id (``org/name`` or ``org/name@revision``)."""
    return bool(_ID.match(spec)) and ".." not in spec


def resolve_checkpoint(spec: str | Path) -> tuple[Path, dict | None]:
    """``(local directory, hub info or None)`` for a checkpoint argument.

    A path that exists is returned as it is (None). A Hub id is resolved to its snapshot
    directory and ``{"repo_id", "revision", "commit"}``. Anything else is returned as a path
    for the caller's own "does not exist" error.

    Raises:
        InvalidInputError: an id that is neither cached nor downloadable (one line: the id, why,
            and what to do).
    """
    if isinstance(spec, Path) or Path(spec).exists() or not is_hub_id(str(spec)):
        return Path(spec), None
    repo_id, _, revision = str(spec).partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InvalidInputError(
            f"{spec!r} is not a local directory; as a Hugging Face Hub id it needs huggingface_hub: "
            "pip install 'convbert-export[export]'"
        ) from None
    # huggingface_hub reads HF_HUB_CACHE / HF_HUB_OFFLINE once, when it is imported: read them
    # at call time too, so a process that sets them later (a test, a notebook) is obeyed
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        path = Path(snapshot_download(repo_id=repo_id, revision=revision or None, allow_patterns=ALLOW_PATTERNS,
                                      cache_dir=os.environ.get("HF_HUB_CACHE") or None,
                                      local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises many kinds; each becomes one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(
            f"{spec!r} is neither a local directory nor a model the Hugging Face Hub gave us "
            f"({type(exc).__name__}: {reason}); check the id and revision, set HF_TOKEN for a private "
            "model, unset HF_HUB_OFFLINE to download, or pass a checkpoint directory"
        ) from None
    return path, {"repo_id": repo_id, "revision": revision or "main", "commit": path.name}
