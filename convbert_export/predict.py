"""``predict``: JSON lines in, JSON lines out, through a directory's Pipeline (what the CLI's
``predict`` command calls). Never imports torch.

Each line is one record for the task (``TaskSpec.record_fields``); a bad line gives
``{"line": n, "error": "..."}`` and the others still run. ``--output`` is written atomically
(an interrupted run leaves the previous file as it was).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import IO, Sequence

from .errors import InvalidInputError
from .fileio import atomic_file
from .progress import QUIET, Progress
from .records import RecordError, answer_records, parse_line

__all__ = ["number_lines", "read_lines", "check_output_path", "settings_for", "predict_lines", "predict", "predict_inputs"]


def number_lines(texts: Sequence[str], data: bytes | None) -> list[tuple[int, bytes]]:
    """(number reported as "line", raw line): ``texts`` first (1..T), then the non-blank lines
    of ``data`` numbered T + their line number (blank lines are skipped but counted)."""
    lines = [(n, json.dumps({"text": t}).encode()) for n, t in enumerate(texts, 1)]
    if data is not None:
        lines.extend((len(texts) + n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip())
    return lines


def read_lines(texts: Sequence[str], input_path: str | None) -> list[tuple[int, bytes]]:
    """:func:`number_lines` of ``texts`` and the file ``input_path`` ('-': standard input; None:
    no file)."""
    data = None
    if input_path == "-":
        data = sys.stdin.buffer.read()
    elif input_path:
        with open(input_path, "rb") as handle:
            data = handle.read()
    return number_lines(texts, data)


def check_output_path(output_path: str) -> None:
    """Refuse an output whose directory is missing or not writable (before any model loads)."""
    directory = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(directory):
        raise InvalidInputError(f"--output {output_path!r}: directory {directory!r} does not exist; "
                                "create it first or choose another path")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InvalidInputError(f"--output {output_path!r}: directory {directory!r} is not writable; "
                                "choose another path")


def settings_for(export_dir, provider: str | None, threads: int):
    """The runner settings carrying ``threads`` for the directory's backend (None: defaults)."""
    from .runtime.factory import backend_for

    backend = backend_for(export_dir, provider)
    if backend == "tensorrt":
        if threads:
            raise InvalidInputError(
                f"--threads sets ONNX Runtime threads, but {str(export_dir)!r} is a TensorRT engine "
                "directory; drop --threads, or predict with the export directory"
            )
        return None
    if backend == "openvino":
        from .runtime.openvino import OpenVinoSettings

        return OpenVinoSettings(threads=threads)
    from .runtime.ort import OrtSettings

    return OrtSettings(intra_op_threads=threads, inter_op_threads=1 if threads else 0)


def predict_lines(pipe, lines: list[tuple[int, bytes]], out: IO[str], chunk: int = 256,
                  progress: Progress = QUIET) -> None:
    """Answer ``lines`` ``chunk`` at a time, writing one JSON line each to ``out``."""
    done = 0
    for start in range(0, len(lines), chunk):
        block = lines[start : start + chunk]
        records = []
        for _, raw in block:
            try:
                records.append(parse_line(raw))
            except RecordError as exc:
                records.append(exc)
        results = answer_records(
            pipe, records,
            on_warning=lambda i, message, block=block: progress.info(f"warning: line {block[i][0]}: {message}"))
        for offset, result in enumerate(results):
            out.write(json.dumps({"line": block[offset][0], **result}, ensure_ascii=False) + "\n")
        out.flush()
        done += len(block)
        progress.info(f"predict: {done}/{len(lines)}")


def predict(export_dir, lines: list[tuple[int, bytes]], output_path: str | None = None, *, batch_size: int = 8,
            provider: str | None = None, threads: int = 0, chunk: int = 256, verify: bool = True,
            progress: Progress = QUIET) -> None:
    """Run ``export_dir`` (export, engine or OpenVINO directory) on ``lines`` (see
    :func:`number_lines`), writing JSON lines to ``output_path`` (atomically) or stdout."""
    from .runtime.pipelines import Pipeline

    if not lines:
        raise InvalidInputError("nothing to predict: pass --text T (repeatable) or --input FILE.jsonl")
    if output_path:  # before the model loads: a typo in --output should not cost a model load
        check_output_path(output_path)
    settings = settings_for(export_dir, provider, threads)
    with progress.step(f"loading {export_dir}"):
        pipe = Pipeline.from_export(export_dir, provider=provider, batch_size=batch_size, settings=settings,
                                    verify=verify)
    with (atomic_file(output_path) if output_path else contextlib.nullcontext(sys.stdout)) as out:
        with pipe:
            predict_lines(pipe, lines, out, chunk, progress)


def predict_inputs(export_dir, texts: Sequence[str] = (), input_path: str | None = None,
                   output_path: str | None = None, **options) -> None:
    """:func:`predict` on ``texts`` then the lines of ``input_path`` ('-': standard input), as the
    CLI's ``predict`` reads them (:func:`read_lines`); ``options`` are :func:`predict`'s."""
    predict(export_dir, read_lines(texts, input_path), output_path, **options)
