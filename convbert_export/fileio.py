"""Atomic file and directory writes, and checksums."""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import InvalidInputError, Terminated


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary file in the same directory and rename it."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write a file through a temporary file in the same directory and rename it."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path`` for writing (streamed); on a clean exit it is
    flushed, synced and renamed onto ``path``, on any exception (an interrupt too) removed, so
    ``path`` is never half-written. The one atomic-write helper: every writer uses it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(data):
    """``data`` with NaN and infinities replaced by None (JSON has no NaN; strict parsers reject it)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def write_json_atomic(path: str | os.PathLike, data) -> None:
    write_text_atomic(path, json.dumps(json_safe(data), indent=2, sort_keys=False, allow_nan=False) + "\n")


def check_output_dir(output: str | os.PathLike, force: bool) -> Path:
    """Refuse an existing output without ``force``; check the parent is writable."""
    output = Path(os.path.abspath(output))  # "." and "sub/.." have no name to put a temporary beside
    if output.exists() and not force:
        raise InvalidInputError(
            f"output directory {str(output)!r} already exists; pass --force (force=True) to replace it"
        )
    if output.exists() and not output.is_dir():
        raise InvalidInputError(f"output {str(output)!r} exists and is not a directory")
    if output.exists() and is_within(os.getcwd(), output):
        raise InvalidInputError(
            f"output {str(output)!r} would replace the current directory (or one holding it); "
            "choose a new directory for --output"
        )
    if output.exists() and force and not _replaceable(output):
        raise InvalidInputError(
            f"output {str(output)!r} exists and is not an export or engine directory (no manifest.json "
            "or engine.json) nor empty; --force replaces only those: remove it yourself or choose another --output"
        )
    parent = output.parent if str(output.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create output directory {str(parent)!r}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(
            f"output directory {str(parent)!r} is not writable; choose another --output"
        )
    return output


# a directory holding one of these was written by us (export, multi-task export root's
# children, engine directory, Triton model repository, evaluation report), so --force may replace it
_OURS = ("manifest.json", "engine.json", "triton-repository.json", "evaluation.json")


def _replaceable(directory: Path) -> bool:
    """Empty, ours, or a multi-task export root (every entry a directory of ours)."""
    if any((directory / name).is_file() for name in _OURS):
        return True
    entries = list(directory.iterdir())
    return all(entry.is_dir() and not entry.is_symlink() and any((entry / name).is_file() for name in _OURS)
               for entry in entries)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_stale_partials(output: Path) -> list[Path]:
    """Remove ``.NAME.<pid>.<random>.partial`` directories beside ``output`` left by a process
    that no longer exists (kill -9, power loss); those of live processes are left alone."""
    removed = []
    prefix = f".{output.name}."
    for path in output.parent.glob(f"{glob.escape(prefix)}*.partial"):
        pid = path.name[len(prefix):].split(".", 1)[0]
        if path.is_dir() and not path.is_symlink() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextmanager
def _sigterm_as_interrupt():
    """While writing, SIGTERM raises :class:`~convbert_export.errors.Terminated` (a
    KeyboardInterrupt), so the same cleanup runs as for Ctrl-C; only in the main thread and
    only when no other handler is installed."""
    import signal
    import threading

    def handler(signum, frame):
        raise Terminated("terminated (SIGTERM)")

    install = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    if install:
        signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def is_within(path: str | os.PathLike, directory: str | os.PathLike) -> bool:
    """Whether ``path`` is ``directory`` or lies under it (symlinks resolved)."""
    path, directory = Path(path).resolve(), Path(directory).resolve()
    return path == directory or directory in path.parents


def check_no_overlap(output: str | os.PathLike, source: str | os.PathLike, what: str, *, inside: bool = True,
                     allow_same: bool = False, fix: str = "choose another --output") -> None:
    """The one overlap check: refuse an ``output`` that would replace ``source`` (it holds it)
    or, with ``inside``, one inside ``source`` (it would break its checksums). ``allow_same``:
    the very same directory is left to the caller's own rule."""
    if allow_same and Path(output).resolve() == Path(source).resolve():
        return
    if inside and is_within(output, source):
        raise InvalidInputError(
            f"output {str(output)!r} overlaps the {what} {str(source)!r}: it is inside the {what}, whose checksums "
            "it would break; choose an --output outside it"
        )
    if is_within(source, output):
        raise InvalidInputError(
            f"output {str(output)!r} overlaps the {what} {str(source)!r}: it would replace the {what} it reads; {fix}"
        )


@contextmanager
def atomic_directory(output: str | os.PathLike, force: bool = False):
    """Yield a temporary directory beside ``output``; on success rename it into place.

    On any error (or KeyboardInterrupt, or SIGTERM) the temporary directory is removed, so an
    interrupted write never leaves a half-written ``output``; partials of dead processes (kill
    -9) are removed by the next write to the same output. With ``force`` an existing ``output`` is
    replaced only after the new one is complete.
    """
    output = check_output_dir(output, force)
    remove_stale_partials(output)
    try:
        tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.{os.getpid()}.", suffix=".partial"))
    except OSError as exc:
        raise InvalidInputError(
            f"output directory {str(output.parent)!r} is not writable ({exc.strerror}); choose another --output"
        ) from None
    try:
        with _sigterm_as_interrupt():
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
            yield tmp
            if output.exists():
                old = output.with_name(f".{output.name}.old-{os.getpid()}")
                os.replace(output, old)
                try:
                    os.replace(tmp, output)
                except BaseException:
                    os.replace(old, output)  # put the old output back
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_jsonl(path: str | os.PathLike, expected: str = "a JSON object") -> list[tuple[int, dict]]:
    """The objects of a JSON-lines file as (line number, object); blank lines are skipped.

    Invalid JSON or a line that is not an object raises InvalidInputError naming the file, the
    line and ``expected`` (what a line should hold, for the message).
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{str(path)!r} does not exist; expected a JSON-lines file")
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: invalid JSON ({exc.msg}); expected {expected}") from None
            if not isinstance(item, dict):
                raise InvalidInputError(f"{path}:{number}: expected {expected}, got {line.strip()[:80]!r}")
            items.append((number, item))
    return items


def read_json(path: str | os.PathLike, fix: str = ""):
    """Parse a JSON file; invalid JSON raises InvalidInputError naming the file (and ``fix``)."""
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}: invalid JSON ({exc})" + (f"; {fix}" if fix else "")) from None
