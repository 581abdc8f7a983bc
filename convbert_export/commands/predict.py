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

import click

from ..progress import Progress
from ..runtime.factory import provider_choices


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
    from ..predict import predict_inputs

    predict_inputs(export_dir, texts, input_path, output_path, batch_size=batch_size, provider=provider,
                   threads=threads, chunk=chunk, verify=not no_verify, progress=Progress(enabled=not quiet))
