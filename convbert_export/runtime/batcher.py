"""Micro-batching for apps with many threads sharing one pipeline.

    batcher = MicroBatcher(pipeline, max_batch_size=16, max_delay_ms=5, max_queue=1000)
    future = batcher.submit("some text")          # concurrent.futures.Future
    result = batcher("some text")                 # blocking
    batcher.close()                               # drains in-flight work

* ``submit`` validates the request in the caller's thread (bad input raises there, at once,
  and never enters a batch); a full queue raises :class:`QueueFullError` at once.
* One worker thread collects requests until ``max_batch_size`` are waiting or the oldest has
  waited ``max_delay_ms``, then runs them through ``pipeline.run_many`` (exact batching, so a
  result never depends on its batch-mates). A request that fails (NaN output, tokenization
  error) fails alone: its future gets the exception, the others get their results.
* Requests with different call parameters are never mixed in one run.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from ..errors import InvalidInputError, QueueFullError

__all__ = ["MicroBatcher"]

_STOP = object()


class MicroBatcher:
    """Thread-safe request coalescing in front of a :class:`Pipeline`.

    Args:
        pipeline: the task pipeline (its runner is shared by the one worker thread).
        max_batch_size: most requests run together.
        max_delay_ms: longest wait for more requests once one is queued.
        max_queue: most requests waiting; beyond it ``submit`` raises QueueFullError.
    """

    def __init__(self, pipeline, max_batch_size: int = 16, max_delay_ms: float = 5.0, max_queue: int = 1024):
        if max_batch_size < 1 or max_queue < 1 or max_delay_ms < 0:
            raise InvalidInputError(
                f"expected max_batch_size >= 1, max_queue >= 1, max_delay_ms >= 0; got "
                f"{max_batch_size}, {max_queue}, {max_delay_ms}"
            )
        self.pipeline = pipeline
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000.0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name="convbert-microbatcher", daemon=True)
        self._worker.start()

    # ---- API ---------------------------------------------------------------------------
    def submit(self, item: Any, **params) -> Future:
        """Queue one request; returns a Future. Bad input and a full queue raise at once."""
        with self._lock:
            if self._closed:
                raise InvalidInputError("the micro-batcher is closed; create a new one")
            checked = self.pipeline.check_input(item)  # per-request validation before batching
            del checked
            future: Future = Future()
            try:
                # group key: repr, since parameter values may be unhashable (fill-mask targets)
                self._queue.put_nowait((item, repr(sorted(params.items())), params, future))
            except queue.Full:
                raise QueueFullError(
                    f"micro-batcher queue is full ({self._queue.maxsize} requests waiting); retry "
                    "later or raise max_queue"
                ) from None
        return future

    def __call__(self, item: Any, timeout: float | None = None, **params) -> Any:
        """Blocking call: submit and wait for the result (re-raises the request's error)."""
        return self.submit(item, **params).result(timeout=timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting requests; finish every queued one; stop the worker.

        Waits at most ``timeout`` seconds (None: until the queue is drained); the worker keeps
        draining in the background after a timeout. Never blocks on a full queue.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            try:
                self._queue.put_nowait(_STOP)  # wakes a worker waiting on an empty queue
            except queue.Full:
                pass  # the worker is busy and sees _stop once it has drained the queue
        self._worker.join(timeout)

    def __enter__(self) -> "MicroBatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- worker ------------------------------------------------------------------------
    def _loop(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get_nowait() if self._stop.is_set() else self._queue.get()
            except queue.Empty:  # closed and drained
                break
            if first is _STOP:
                break
            batch = [first]
            deadline = time.monotonic() + self.max_delay
            while len(batch) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                try:
                    request = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if request is _STOP:
                    stopping = True
                    break
                batch.append(request)
            self._run(batch)
        # drain whatever is still queued (close() is called once, after the last submit)
        rest = []
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request is not _STOP:
                rest.append(request)
        for start in range(0, len(rest), self.max_batch_size):
            self._run(rest[start : start + self.max_batch_size])

    def _run(self, batch: list) -> None:
        groups: dict[str, list] = {}
        for request in batch:
            groups.setdefault(request[1], []).append(request)
        for requests in groups.values():
            live = [r for r in requests if r[3].set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = self.pipeline.run_many([r[0] for r in live], **live[0][2])
            except BaseException as exc:  # noqa: BLE001 - bad params: every request of the group
                for r in live:
                    r[3].set_exception(exc)
                continue
            for r, result in zip(live, results):
                if isinstance(result, BaseException):
                    r[3].set_exception(result)
                else:
                    r[3].set_result(result)
