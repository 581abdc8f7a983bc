"""``convbert-export predict``: JSON lines in, JSON lines out, one object per input, in order.

DIR is an export directory (run with ONNX Runtime: ``--provider cpu|cuda|tensorrt``,
``--threads``) or a TensorRT engine directory from ``build-engine`` (one holding
``engine.json``; run with TensorRT, so ``--provider`` may only be ``tensorrt`` and
``--threads`` does not apply).

Input lines per task: ``{"text"}`` (also ``{"text", "text_pair"}`` for text-classification),
``{"question", "context"}`` for question-answering, ``{"prompt", "choices"}`` for
multiple-choice. ``"line"`` numbers the inputs: the ``--text`` values first (1..T), then the
file's lines, T + their line number in the file (blank lines are skipped, but counted). A bad
line (invalid JSON, invalid UTF-8, missing fields, bad text) yields ``{"line": N, "error":
"..."}`` for that line; the others still run. Never imports torch.
"""

from __future__ import annotations

import json
import os
import sys

import click

from ..runtime.factory import provider_choices

from ..progress import Progress
from ..records import RecordError, answer_records, parse_line


@click.command(name="predict")
@click.argument("export_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--text", "texts", multiple=True, help="A text to run (repeatable).")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSON lines file ('-' reads standard input).")
@click.option("--output", "output_path", type=click.Path(dir_okay=False), help="Write JSON lines here (default stdout).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--provider", default=None, type=click.Choice(provider_choices()),
              help="ONNX Runtime provider for an export directory (default cpu), or openvino; an engine "
                   "directory runs on TensorRT only, an OpenVINO directory on OpenVINO.")
@click.option("--threads", default=0, show_default=True, type=click.IntRange(0),
              help="ONNX Runtime intra-op (or OpenVINO) threads (0 = all cores); export directories only.")
@click.option("--chunk", default=256, show_default=True, type=click.IntRange(1), help="Lines read per step.")
@click.option("--no-verify", "no_verify", is_flag=True,
              help="Skip checking DIR's files against its manifest's sha256 (only for a directory "
                   "verified when it was deployed).")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def command(export_dir, texts, input_path, output_path, batch_size, provider, threads, chunk, no_verify, quiet):
    """Run DIR (an export or a TensorRT engine directory) on texts: JSON lines in, JSON lines out."""
    from ..errors import InvalidInputError
    from ..runtime.factory import backend_for
    from ..runtime.pipelines import Pipeline, is_engine_dir

    progress = Progress(enabled=not quiet)
    if not texts and not input_path:
        raise InvalidInputError("nothing to predict: pass --text T (repeatable) or --input FILE.jsonl")
    # (number reported as "line", raw line): --text values first (1..T), then the file's lines
    # numbered T + their line number in the file (blank lines are skipped but counted)
    lines: list[tuple[int, bytes]] = [(n, json.dumps({"text": t}).encode()) for n, t in enumerate(texts, 1)]
    if input_path:
        if input_path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(input_path, "rb") as handle:
                data = handle.read()
        lines.extend((len(texts) + n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip())
    if output_path:  # before the model loads: a typo in --output should not cost a model load
        directory = os.path.dirname(os.path.abspath(output_path))
        if not os.path.isdir(directory):
            raise InvalidInputError(f"--output {output_path!r}: directory {directory!r} does not exist; "
                                    "create it first or choose another path")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InvalidInputError(f"--output {output_path!r}: directory {directory!r} is not writable; "
                                    "choose another path")
    if is_engine_dir(export_dir):
        if threads:
            raise InvalidInputError(
                f"--threads sets ONNX Runtime threads, but {export_dir!r} is a TensorRT engine "
                "directory; drop --threads, or predict with the export directory"
            )
        settings = None
    elif backend_for(export_dir, provider) == "openvino":
        from ..runtime.openvino import OpenVinoSettings

        settings = OpenVinoSettings(threads=threads)
    else:
        from ..runtime.ort import OrtSettings

        settings = OrtSettings(intra_op_threads=threads, inter_op_threads=1 if threads else 0)
    with progress.step(f"loading {export_dir}"):
        pipe = Pipeline.from_export(export_dir, provider=provider, batch_size=batch_size, settings=settings,
                                    verify=not no_verify)
    # --output is written to a temporary file beside it and renamed at the end: an interrupted
    # run never leaves a half-written output file behind
    import contextlib

    from ..fileio import atomic_file

    done = 0
    with (atomic_file(output_path) if output_path else contextlib.nullcontext(sys.stdout)) as out:
        with pipe:
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
