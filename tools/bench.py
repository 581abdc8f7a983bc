"""Benchmark export directories against the PyTorch reference, interleaved in one process.

    python tools/bench.py EXPORT_DIR... [--torch-reference] [--batch 1,8,32] [--sequence 32,128,512]
                          [--threads 2] [--repeats 20] [--json-out bench.json]

The same code as ``convbert-export benchmark`` (convbert_export/bench/): p50/p90/p99 latency and
throughput per backend and grid point, the speedup over PyTorch eager fp32, and the fp32 GEMM
floor measured in the same run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported (see the benchmark command)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convbert_export.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
