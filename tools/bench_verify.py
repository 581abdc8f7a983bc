"""What checking an export's sha256 at load costs: ``Pipeline.from_export(dir)`` with
verification (the default) and with ``verify=False``, interleaved, plus the hashing alone.

    python tools/bench_verify.py EXPORT_DIR [--repeats 5]

Prints the median seconds of each, the difference and the bytes hashed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from convbert_export.manifest import load_manifest, verify_directory
    from convbert_export.runtime.ort import OrtSettings
    from convbert_export.runtime.pipelines import Pipeline

    directory = Path(args.export_dir)
    hashed = sum((directory / name).stat().st_size for name in load_manifest(directory).files)
    settings = OrtSettings(intra_op_threads=1, inter_op_threads=1, allow_spinning=False)
    times: dict[str, list[float]] = {"verify only": [], "load, verified": [], "load, verify=False": []}
    for _ in range(args.repeats):  # interleaved, so drift in the machine's load hits all three
        started = time.perf_counter()
        verify_directory(directory)
        times["verify only"].append(time.perf_counter() - started)
        for label, verify in (("load, verified", True), ("load, verify=False", False)):
            started = time.perf_counter()
            Pipeline.from_export(directory, settings=settings, verify=verify).close()
            times[label].append(time.perf_counter() - started)
    print(f"{directory}: {hashed / 1e6:.1f} MB hashed, {args.repeats} repeats (median seconds)")
    for label, values in times.items():
        print(f"  {label:20s} {statistics.median(values):.3f}  (min {min(values):.3f}, max {max(values):.3f})")
    verified, plain = statistics.median(times["load, verified"]), statistics.median(times["load, verify=False"])
    print(f"  cost of verification: {verified - plain:+.3f} s per load ({verified / plain:.2f}x)")


if __name__ == "__main__":
    main()
