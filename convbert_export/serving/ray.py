"""A Ray Serve deployment of an export or engine directory (the ``ray`` extra).

    from convbert_export.serving.ray import RaySettings, build_app
    from ray import serve
    serve.run(build_app("exports/clf", RaySettings(replicas=2)), route_prefix="/clf")

An ingress deployment takes HTTP; each model replica loads the directory once
(``Pipeline.from_export``) and gathers records from concurrent requests with ``@serve.batch``
into one ``Pipeline.run_many`` call. That call
batches exactly: exact-padding exports mix lengths, padding-leaking exports batch equal lengths
only, so a record's answer never depends on its batch-mates. A batch-dependent export
(``"batch_invariant": false``, dynamic int8) runs one record at a time unless
``allow_batch_dependent`` is set.

HTTP: POST one record (``{"text": ...}``, the same JSON objects ``predict`` reads) and get one
answer (``{"result": ...}`` or ``{"error": "..."}``), or POST a list of records and get a list
of answers, in order; a bad record gets its error object and never fails its neighbours. A body
that is not JSON, or has more than ``max_records`` records, gets 400 with ``{"error"}``. When
the model replicas are busy (``max_ongoing`` each) and ``max_queued`` requests already wait, a
request is rejected at once: 503 ``{"error": "overloaded...", "retryable": true}`` with
``Retry-After``. A request whose replica dies under it is retried once on a live replica, else
gets the same retryable 503 (Serve replaces the replica). The ingress replica itself is not
replicated: if it dies, requests in flight through it fail with Ray's 500 until Serve restarts it.

:func:`serve_forever` starts a local Ray on loopback and serves until interrupted
(``convbert-export serve``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ray import serve

from ..errors import InvalidInputError, check_int

__all__ = ["RaySettings", "ConvBertModel", "ConvBertIngress", "build_app", "start_local", "serve_forever"]

APP_NAME = "convbert"


@dataclass(frozen=True)
class RaySettings:
    """How the deployment runs.

    Attributes:
        replicas: replicas (each one Ray actor with its own session).
        max_batch_size: most records ``@serve.batch`` gathers into one pipeline call.
        batch_wait_ms: longest wait for more records once one arrived.
        max_ongoing: requests in flight per replica (Ray Serve's ``max_ongoing_requests``).
        max_queued: requests waiting at the proxy beyond that; more are rejected with 503
            (default: ``max_ongoing``).
        max_records: most records in one HTTP request.
        threads: ONNX Runtime intra-op threads per replica (ONNX export directories).
        provider: ONNX Runtime provider (ONNX export directories; default cpu).
        num_cpus: CPUs Ray reserves per replica.
        allow_batch_dependent: batch records of a batch-dependent export anyway.
    """

    replicas: int = 1
    max_batch_size: int = 8
    batch_wait_ms: float = 5.0
    max_ongoing: int = 16
    max_queued: int | None = None
    max_records: int = 256
    threads: int = 1
    provider: str | None = None
    num_cpus: float = 0.0
    allow_batch_dependent: bool = False

    def __post_init__(self):
        for key in ("replicas", "max_batch_size", "max_ongoing", "max_records"):
            check_int(key, getattr(self, key), 1)
        if self.max_queued is not None:
            check_int("max_queued", self.max_queued, 1, " (or None)")
        check_int("threads", self.threads, 0)
        if not 0 <= self.batch_wait_ms <= 10_000:
            raise InvalidInputError(f"batch_wait_ms must be in [0, 10000], got {self.batch_wait_ms!r}")
        if self.num_cpus < 0:
            raise InvalidInputError(f"num_cpus must be >= 0, got {self.num_cpus!r}")


def _error(message: str, status: int, retryable: bool = False):
    from starlette.responses import JSONResponse

    body = {"error": message, **({"retryable": True} if retryable else {})}
    headers = {"Retry-After": "1"} if retryable else None
    return JSONResponse(body, status_code=status, headers=headers)


class ConvBertModel:
    """One model replica: a Pipeline over the directory; records from concurrent requests are
    gathered by ``@serve.batch`` into one ``answer_records`` call."""

    def __init__(self, directory: str, settings: dict):
        import warnings

        from ..runtime import Pipeline
        from ..runtime.factory import backend_for

        self.settings = RaySettings(**settings)
        options: dict[str, Any] = {}
        if backend_for(directory) == "onnxruntime":
            from ..runtime import OrtSettings

            threads = self.settings.threads
            options = {"provider": self.settings.provider,
                       "settings": OrtSettings(intra_op_threads=threads, inter_op_threads=1 if threads else 0)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the batch-dependence warning: handled below
            self.pipe = Pipeline.from_export(directory, batch_size=self.settings.max_batch_size, **options)
        batch = self.settings.max_batch_size
        if not self.pipe.manifest.get("batch_invariant", True) and not self.settings.allow_batch_dependent:
            batch = 1  # dynamic int8: answers would depend on batch-mates
        self.batch_size = batch
        self._answer.set_max_batch_size(batch)
        self._answer.set_batch_wait_timeout_s(self.settings.batch_wait_ms / 1000.0)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _answer(self, records: list) -> list[dict]:
        from ..records import answer_records

        # off the event loop, so the replica keeps answering health checks while it computes
        return await asyncio.get_running_loop().run_in_executor(None, answer_records, self.pipe, records)

    async def answer(self, records: list) -> list[dict]:
        """The answers of one request's records (batched with other requests' records)."""
        return list(await asyncio.gather(*(self._answer(record) for record in records)))

    def info(self) -> dict:
        """Replica facts for tests and operators: task, batch size, process id."""
        return {"task": self.pipe.task, "batch_size": self.batch_size, "pid": os.getpid()}


class ConvBertIngress:
    """The HTTP handler (see the module doc): parses the body, sends the request's records to
    a model replica in one call, and turns Ray's failures into clear answers: backpressure ->
    503 with the reason; a replica that died under the request -> retried once on another,
    then 503 ``{"error", "retryable": true}``."""

    def __init__(self, model, settings: dict):
        self.model = model
        self.settings = RaySettings(**settings)

    async def __call__(self, request) -> Any:
        from ray.exceptions import RayActorError
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
        from starlette.responses import JSONResponse

        from ..records import RecordError, parse_line

        try:
            body = parse_line(await request.body())
        except RecordError as exc:
            return _error(f"the body must be one JSON record or a JSON list of records: {exc}", 400)
        single = not isinstance(body, list)
        records = [body] if single else body
        if not records:
            return _error("empty list of records; send at least one", 400)
        if len(records) > self.settings.max_records:
            return _error(f"{len(records)} records in one request, more than max_records="
                          f"{self.settings.max_records}; split the request", 400)
        failure = None
        for _ in range(2):  # a replica killed under the request: once more, on a live replica
            try:
                answers = await self.model.answer.remote(records)
                return JSONResponse(answers[0] if single else answers)
            except BackPressureError as exc:
                return _error(f"overloaded, retry later: {exc.message}", 503, retryable=True)
            except (RayActorError, DeploymentUnavailableError) as exc:
                failure = exc
        return _error(f"no model replica could answer ({type(failure).__name__}); retry later", 503, retryable=True)


def build_app(directory: str | os.PathLike, settings: RaySettings | None = None, name: str = APP_NAME):
    """A Ray Serve application for ``directory`` (an export or engine directory): an ingress
    deployment (one replica) in front of ``settings.replicas`` model replicas."""
    from ..manifest import load_manifest

    settings = settings or RaySettings()
    directory = Path(directory).resolve()
    load_manifest(directory)  # a bad directory fails here, in one line, not inside a replica
    queued = settings.max_queued or settings.max_ongoing
    model = serve.deployment(
        ConvBertModel,
        name=f"{name}-model",
        num_replicas=settings.replicas,
        max_ongoing_requests=settings.max_ongoing,
        max_queued_requests=queued,  # beyond it the ingress's handle raises BackPressureError
        ray_actor_options={"num_cpus": settings.num_cpus},
        health_check_period_s=2,
        health_check_timeout_s=10,
        graceful_shutdown_timeout_s=5,
    )
    # the ingress holds far more than the model replicas take, so overload is decided (and
    # explained) at the model; past even this the proxy itself answers 503 with Ray's reason
    capacity = 4 * settings.replicas * (settings.max_ongoing + queued) + 32
    ingress = serve.deployment(
        ConvBertIngress,
        name=name,
        num_replicas=1,
        max_ongoing_requests=capacity,
        max_queued_requests=capacity,
        ray_actor_options={"num_cpus": 0},
    )
    return ingress.bind(model.bind(str(directory), asdict(settings)), asdict(settings))


def start_local(num_cpus: int | None = None, port: int = 8000) -> None:
    """Start a local Ray (unless this process already runs one) and Ray Serve's HTTP proxy on
    127.0.0.1:``port``.

    The package's parent directory goes on the workers' PYTHONPATH, so replicas import
    convbert_export from a checkout as well as from an installed wheel.
    """
    import ray

    package_root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
    if not ray.is_initialized():
        # address="local": always a new cluster of our own, never one another process started
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, _node_ip_address="127.0.0.1")
    serve.start(http_options={"host": "127.0.0.1", "port": port})


def serve_forever(directory: str | os.PathLike, settings: RaySettings | None = None, port: int = 8000,
                  route_prefix: str = "/", on_ready: Callable[[str], None] = print) -> None:
    """Serve ``directory`` on a local Ray at ``http://127.0.0.1:port<route_prefix>`` until
    interrupted; calls ``on_ready(url)`` once the replicas are up, then blocks."""
    import time

    import ray

    app = build_app(directory, settings)  # a bad directory fails before Ray starts
    start_local(port=port)
    try:
        serve.run(app, name=APP_NAME, route_prefix=route_prefix)
        on_ready(f"http://127.0.0.1:{port}{route_prefix}")
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()
        ray.shutdown()

