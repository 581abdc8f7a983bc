"""Ray Serve against in-process Pipeline on the same texts: throughput and p50/p99 latency.

    python tools/bench_serving.py EXPORT_DIR [--requests 200] [--concurrency 8] [--replicas 1,2]

Closed loop: ``--concurrency`` client threads each send one record per request until
``--requests`` are done. Measured in one process, interleaved over ``--rounds`` rounds (each
run gets the same share of whatever else loads the machine):

* ``pipeline``: in-process ``Pipeline``, one text per call, one caller (the latency floor);
* ``microbatcher``: in-process ``Pipeline`` behind ``MicroBatcher`` with the same client threads
  (in-process batching for concurrent callers, the fair throughput baseline);
* ``ray-N``: Ray Serve over HTTP on 127.0.0.1 with N model replicas (``@serve.batch``).

Texts are the package's validation texts, cycled. ONNX Runtime threads (spinning off):
``--baseline-threads`` for the in-process runs, ``--threads`` per replica. Prints a Markdown table and, with ``--json``, the
raw numbers. Timings on a shared machine are contended: say so next to any number you quote.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def percentile(values, q):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def closed_loop(call, texts, requests, concurrency):
    """Run ``call(text)`` ``requests`` times from ``concurrency`` threads; (wall s, latencies ms)."""
    latencies, errors, lock, counter = [], [], threading.Lock(), iter(range(requests))

    def client():
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            start = time.perf_counter()
            try:
                call(texts[index % len(texts)])
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(repr(exc))
            with lock:
                latencies.append((time.perf_counter() - start) * 1000)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return wall, latencies


def row(name, wall, latencies, requests):
    return {"name": name, "requests": requests, "throughput_rps": requests / wall,
            "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 99)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export_dir")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--replicas", default="1,2")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (per replica)")
    parser.add_argument("--baseline-threads", default="1,2", help="ORT threads of the in-process runs")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (requests split evenly)")
    parser.add_argument("--json", dest="json_path", help="write the raw numbers here")
    args = parser.parse_args(argv)

    from convbert_export import Pipeline
    from convbert_export.runtime import MicroBatcher, OrtSettings
    from convbert_export.tokenization import validation_texts

    import ray
    from ray import serve

    from convbert_export.serving.ray import RaySettings, build_app, start_local

    texts = [row["text"] for row in validation_texts() if "text" in row]
    runs: dict[str, object] = {}  # name -> call(text); every run is measured in every round
    closers = []
    for threads in [int(t) for t in args.baseline_threads.split(",")]:
        settings = OrtSettings(intra_op_threads=threads, inter_op_threads=1, allow_spinning=False)
        pipe = Pipeline.from_export(args.export_dir, batch_size=args.max_batch_size, settings=settings)
        batcher = MicroBatcher(pipe, max_batch_size=args.max_batch_size, max_delay_ms=args.batch_wait_ms,
                               max_queue=10_000)
        closers += [batcher.close, pipe.close]
        task = pipe.task
        runs[f"pipeline, 1 caller, {threads} ORT thread(s)"] = (pipe, 1)
        runs[f"microbatcher, {args.concurrency} callers, {threads} ORT thread(s)"] = (batcher, args.concurrency)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start_local(num_cpus=2, port=port)
    try:
        for replicas in [int(r) for r in args.replicas.split(",")]:
            name = f"bench{replicas}"
            serve.run(build_app(args.export_dir, RaySettings(
                replicas=replicas, max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms,
                max_ongoing=4 * args.concurrency, threads=args.threads), name=name), name=name,
                route_prefix=f"/{name}")
            url = f"http://127.0.0.1:{port}/{name}"

            def call(text, url=url):
                request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), method="POST")
                with urllib.request.urlopen(request, timeout=120) as response:
                    answer = json.loads(response.read())
                if "result" not in answer:
                    raise RuntimeError(answer)

            runs[f"ray serve, {replicas} replica(s) x {args.threads} ORT thread(s), {args.concurrency} clients"] = (
                call, args.concurrency)
        for call, concurrency in runs.values():  # warm up (every replica of every app)
            closed_loop(call, texts, 4 * concurrency, concurrency)
        walls = {name: 0.0 for name in runs}
        latencies: dict[str, list] = {name: [] for name in runs}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):  # interleaved: the machine's load hits every run alike
            for name, (call, concurrency) in runs.items():
                wall, lat = closed_loop(call, texts, per_round, concurrency)
                walls[name] += wall
                latencies[name] += lat
        rows = [row(name, walls[name], latencies[name], per_round * args.rounds) for name in runs]
    finally:
        for close in closers:
            close()
        serve.shutdown()
        ray.shutdown()

    print(f"{args.export_dir} ({task}), {per_round * args.rounds} requests per run in {args.rounds} "
          f"interleaved rounds, max batch {args.max_batch_size}, batch wait {args.batch_wait_ms} ms")
    print("| run | throughput (req/s) | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['throughput_rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
