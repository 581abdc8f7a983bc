"""Ray Serve end to end against a real local Ray (2 CPUs, loopback only): answers equal Pipeline,
two replicas under concurrent clients, a replica killed mid-load, overload, poisoned records.

Ray starts once for the module; every HTTP call has a timeout and every loop a bound."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from convbert_export.tasks import TASKS

from .conftest import TEXTS, assert_same, records_for

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

TIMEOUT_S = 60  # per HTTP call: generous for a shared 2-core machine, yet no call can hang


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def local_serve():
    from convbert_export.serving.ray import start_local

    port = _free_port()
    start_local(num_cpus=2, port=port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def post(url: str, body, timeout: float = TIMEOUT_S):
    """(status, parsed JSON or text, headers) of one POST; HTTP errors are returned, not raised."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            text = json.loads(text)
        except ValueError:
            pass
        return exc.code, text, {k.lower(): v for k, v in exc.headers.items()}


def deploy(local_serve: str, export, name: str, **settings) -> str:
    from convbert_export.serving.ray import RaySettings, build_app

    serve.run(build_app(export, RaySettings(**settings)), name=name, route_prefix=f"/{name}")
    return f"{local_serve}/{name}"


def expected_answers(export, records):
    from convbert_export import Pipeline
    from convbert_export.records import answer_records

    with Pipeline.from_export(export) as pipe:
        return answer_records(pipe, records)


@pytest.fixture(scope="module")
def two_replicas(local_serve, serving_export):
    export = serving_export("text-classification")
    url = deploy(local_serve, export, "two", replicas=2, max_batch_size=4, batch_wait_ms=20, max_ongoing=8)
    texts = [f"{TEXTS[i % len(TEXTS)]} {' '.join(['movie'] * (i % 7))} number {i}" for i in range(48)]
    want = expected_answers(export, [{"text": t} for t in texts])
    assert len({json.dumps(w) for w in want}) == len(texts)  # distinct answers: a swap would show
    return url, texts, want


def _check_answers(url, export, task):
    records = records_for(task) + [{"wrong": "fields"}, 7]
    want = expected_answers(export, records)
    status, got, _ = post(url, records)  # one request, many records
    assert status == 200
    assert_same(got, want)
    assert "error" in got[-1] and "error" in got[-2]
    status, one, _ = post(url, records[0])  # one record -> one answer object
    assert status == 200
    assert_same(one, want[0])


def test_answers_equal_pipeline_text_classification(two_replicas, serving_export):
    _check_answers(two_replicas[0], serving_export("text-classification"), "text-classification")


@pytest.mark.slow
@pytest.mark.parametrize("task", [t for t in TASKS if t != "text-classification"])
def test_answers_equal_pipeline_every_task(local_serve, serving_export, task):
    url = deploy(local_serve, serving_export(task), f"task-{task}", max_batch_size=4)
    try:
        _check_answers(url, serving_export(task), task)
    finally:
        serve.delete(f"task-{task}")


def _run_clients(url, texts, clients: int, on_response=None):
    """Each client posts its share of the texts one request at a time; returns per text the
    (status, body) pairs it got."""
    results: dict[int, list] = {i: [] for i in range(len(texts))}
    lock = threading.Lock()

    def client(k: int):
        for i in range(k, len(texts), clients):
            body = {"text": texts[i]} if i % 3 else [{"text": texts[i]}]  # single and list bodies
            status, answer, _ = post(url, body)
            if status == 200 and isinstance(answer, list):
                answer = answer[0]
            with lock:
                results[i].append((status, answer))
            if on_response is not None:
                on_response()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S * len(texts))
    assert not any(t.is_alive() for t in threads), "a client hung"
    return results


def test_two_replicas_concurrent_clients_nothing_lost_nothing_duplicated(two_replicas):
    url, texts, want = two_replicas
    results = _run_clients(url, texts, clients=6)
    for i, got in results.items():
        assert len(got) == 1, f"text {i}: {len(got)} responses"
        status, answer = got[0]
        assert status == 200, answer
        assert_same(answer, want[i], f"text {i}")
    replicas = [n for n in _replica_names() if n.startswith("SERVE_REPLICA::two#")]
    assert len(replicas) == 2


def _replica_names() -> list[str]:
    return [actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["namespace"] == "serve" and actor["name"].startswith("SERVE_REPLICA::")
            and "#convbert-model#" in actor["name"]]


def test_a_poisoned_record_fails_alone_in_a_shared_batch(two_replicas, serving_export):
    export = serving_export("text-classification")
    url = two_replicas[0]
    # concurrent requests land in one @serve.batch (20 ms window)
    good = [{"text": t} for t in TEXTS]
    poisoned = [{"text": ""}, {"text": 5}, {"text": "x" * 1_000_001}, "not an object", {"text": "\ud800 lone"}]
    want = expected_answers(export, good)
    answers: dict[int, tuple] = {}

    def client(i, record):
        answers[i] = post(url, record)[:2]

    records = [r for pair in zip(good, poisoned) for r in pair]  # interleaved, concurrent
    threads = [threading.Thread(target=client, args=(i, r), daemon=True) for i, r in enumerate(records)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S)
    assert len(answers) == len(records)
    for i, record in enumerate(records):
        status, answer = answers[i]
        assert status == 200
        if record in good:
            assert_same(answer, want[good.index(record)])
        elif record == {"text": "\ud800 lone"}:
            assert "result" in answer  # a lone surrogate is replaced (with a warning), as in Pipeline
        else:
            assert set(answer) == {"error"} and answer["error"], answer
    status, body, _ = post(url, b"{not json")
    assert status == 400 and "JSON" in body["error"]
    status, body, _ = post(url, [{"text": "a"}] * 300)
    assert status == 400 and "max_records" in body["error"]


def test_killing_a_replica_mid_load_fails_cleanly_and_recovers(two_replicas):
    url, texts, want = two_replicas
    before = [n for n in _replica_names() if n.startswith("SERVE_REPLICA::two#")]
    assert len(before) == 2
    done = [0]
    killed = threading.Event()

    def maybe_kill():
        done[0] += 1
        if done[0] == 6 and not killed.is_set():
            killed.set()
            ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)

    results = _run_clients(url, texts, clients=4, on_response=maybe_kill)
    assert killed.is_set()
    ok = 0
    for i, got in results.items():
        assert len(got) == 1
        status, answer = got[0]
        if status == 200:
            assert_same(answer, want[i], f"text {i}")
            ok += 1
        else:  # a clear, retryable server-side error, never a hang or a wrong answer
            assert status == 503 and answer.get("retryable") is True and answer.get("error"), (status, answer)
    assert ok >= len(texts) // 2
    print(f"kill mid-load: {ok}/{len(texts)} served, others: "
          f"{[got[0] for got in results.values() if got[0][0] != 200]}")
    # recovery: Serve replaces the replica; bounded wait until two replicas serve again
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = [n for n in _replica_names() if n.startswith("SERVE_REPLICA::two#")]
        if len(now) == 2 and before[0] not in now:
            status, answer, _ = post(url, {"text": texts[0]})
            if status == 200:
                assert_same(answer, want[0])
                break
        time.sleep(1)
    else:
        pytest.fail(f"the deployment did not recover two replicas within 90 s: {_replica_names()}")


def test_overload_is_rejected_with_503_not_queued(local_serve, serving_export):
    url = deploy(local_serve, serving_export("text-classification"), "tight",
                 max_ongoing=1, max_queued=1, max_batch_size=4)
    try:
        heavy = [{"text": " ".join([TEXTS[3]] * 3)} for _ in range(64)]  # seconds of work per request
        outcomes: list[tuple[int, float, object, dict]] = []
        lock = threading.Lock()

        def client():
            start = time.monotonic()
            status, body, headers = post(url, heavy)
            with lock:
                outcomes.append((status, time.monotonic() - start, body, headers))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT_S * 8)
        assert len(outcomes) == 8, "a client hung"
        rejected = [o for o in outcomes if o[0] == 503]
        served = [o for o in outcomes if o[0] == 200]
        assert rejected and served and len(rejected) + len(served) == 8, [o[:2] for o in outcomes]
        for _, _, body, headers in rejected:
            if isinstance(body, dict):  # decided at the model replicas, by our ingress
                assert body["retryable"] is True and "overloaded" in body["error"], body
            else:  # or by Ray's proxy in front of the ingress: its own reason
                assert "backpressure" in body.lower() or "queue" in body.lower(), body
            assert headers.get("retry-after") == "1"
        # rejected at once: no rejection waited as long as the slowest served request
        assert max(o[1] for o in rejected) < max(o[1] for o in served)
    finally:
        serve.delete("tight")


def test_serve_cli_refuses_a_bad_directory_before_starting_ray(tmp_path):
    from convbert_export.cli import main

    assert main(["serve", str(tmp_path)]) == 2


@pytest.mark.slow
def test_serve_cli_serves_until_interrupted(serving_export, tmp_path):
    """`convbert-export serve` in a subprocess (its own local Ray): prints the URL, answers, and
    stops on SIGINT. Bounded waits throughout; the process is always ended."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    port = _free_port()
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "convbert_export.cli", "serve", str(serving_export("text-classification")),
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and "serving " not in log.read_text():
                assert process.poll() is None, log.read_text()[-2000:]
                time.sleep(1)
            assert f"http://127.0.0.1:{port}/" in log.read_text(), log.read_text()[-2000:]
            status, answer, _ = post(f"http://127.0.0.1:{port}/", {"text": TEXTS[0]})
            assert status == 200 and "result" in answer
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
