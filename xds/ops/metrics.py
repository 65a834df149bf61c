"""Prometheus metrics of the HTTP app (``GET /metrics``): requests by IHE transaction and
outcome, their duration and bytes, the audit outbox and the database pool; summed over the
workers of ``xds serve --workers N`` by prometheus-client's multiprocess mode."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xds.actions import Action
from xds.ebrim.vocabulary import NS_RS, ResponseStatus
from xds.fhir.context import TRANSACTIONS as FHIR_RESOURCE_TRANSACTIONS
from xds.hl7v3 import AcknowledgementType, Interaction, read_acknowledgement
from xds.mpi.iti44 import FEED_INTERACTIONS
from xds.ops.health import HEALTHZ_PATH, READYZ_PATH
from xds.soap import SoapEndpoint
from xds.store.db import read_connection
from xds.store.tables import audit_outbox

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["Metrics", "RequestMetrics", "metrics_route", "soap_outcome", "path_transaction",
           "prepare_multiprocess", "process_exited", "TRANSACTIONS", "METRICS_PATH",
           "MULTIPROC_ENV"]

log = logging.getLogger("xds.ops")

METRICS_PATH = "/metrics"
#: prometheus-client's variable: the directory where each process writes its samples. It must
#: be set before prometheus_client is first imported (that import picks the value class), so
#: this module imports prometheus_client only inside ``Metrics``.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: wsa:Action -> the IHE transaction it starts (the ``transaction`` label of SOAP requests).
TRANSACTIONS: dict[str, str] = {
    Action.RegistryStoredQuery: "ITI-18",
    Action.MultiPatientStoredQuery: "ITI-51",
    Action.RegisterDocumentSet_b: "ITI-42",
    Action.ProvideAndRegisterDocumentSet_b: "ITI-41",
    Action.RetrieveDocumentSet: "ITI-43",
    Action.RetrieveImagingDocumentSet: "RAD-69",
    **{interaction.action: "ITI-44" for interaction in FEED_INTERACTIONS},
    Interaction.PRPA_IN201309UV02.action: "ITI-45",
}
#: FHIR resource type (the first path segment under the FHIR base) -> transaction label.
_FHIR_TRANSACTIONS = {**FHIR_RESOURCE_TRANSACTIONS, "ImagingStudy": "FHIR ImagingStudy",
                      "Endpoint": "FHIR Endpoint"}
_STATUS_OUTCOMES: dict[str, str] = {
    ResponseStatus.Success: "success", ResponseStatus.PartialSuccess: "partial",
    ResponseStatus.Failure: "failure",
}
_ACCEPTED = frozenset({AcknowledgementType.AA, "CA"})
_RS_RESPONSE = f"{{{NS_RS}}}RegistryResponse"
#: Seconds; past the default 10 s because ITI-43/RAD-69 stream gigabytes.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def soap_outcome(body: etree._Element | None) -> str:
    """The ``outcome`` of a SOAP answer body (None: a fault): the ebRS status of a
    RegistryResponse or AdhocQueryResponse, or of the RegistryResponse inside a
    RetrieveDocumentSetResponse (success, partial, failure); the HL7 v3 acknowledgement of
    PIX answers (AA success, else failure)."""
    if body is None:
        return "fault"
    status = body.get("status")
    if status is None:
        response = body.find(_RS_RESPONSE)
        status = response.get("status") if response is not None else None
    if status is not None:
        return _STATUS_OUTCOMES.get(status, "failure")
    ack, _details = read_acknowledgement(body)
    if ack is not None:
        return "success" if ack in _ACCEPTED else "failure"
    return "success"


def path_transaction(method: str, path: str, fhir_path: str,
                     prefixes: Mapping[str, str]) -> str:
    """The ``transaction`` label of a request no endpoint labelled, from its path: under
    ``fhir_path`` by resource type (``POST [base]`` is ITI-65, ``Patient/$ihe-pix`` ITI-83),
    else the label of its mount prefix, else "other". Never the raw path (cardinality)."""
    if path == fhir_path or path.startswith(fhir_path + "/"):
        parts = path[len(fhir_path):].strip("/").split("/")
        if parts[0] == "":
            return "ITI-65" if method == "POST" else "FHIR"
        if parts[:2] == ["Patient", "$ihe-pix"]:
            return "ITI-83"
        return _FHIR_TRANSACTIONS.get(parts[0], "FHIR")
    for prefix, label in prefixes.items():
        if path == prefix or path.startswith(prefix + "/"):
            return label
    return "other"


def _status_outcome(status: int) -> str:
    return "success" if status < 400 else f"{status // 100}xx"


class _ScrapeGauges:
    """Gauges computed when scraped: the audit outbox depth (one COUNT) and the pool of the
    process answering the scrape. With several workers, the pool figures are those of the
    worker that answered, not a sum: each worker has a pool of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        pool = self.engine.pool
        if isinstance(pool, QueuePool):
            yield GaugeMetricFamily("xds_db_pool_checked_out", "Database connections in use "
                                    "in the answering worker.", value=pool.checkedout())
            yield GaugeMetricFamily("xds_db_pool_size", "Configured database pool size of "
                                    "the answering worker.", value=pool.size())
        try:
            with read_connection(self.engine) as conn:
                depth = conn.execute(select(func.count()).select_from(audit_outbox)
                                     .where(audit_outbox.c.sent.is_(None))).scalar_one()
        except SQLAlchemyError as exc:  # the scrape still answers; /readyz says what is wrong
            log.warning("metrics: audit outbox not counted: %s", exc)
            return
        yield GaugeMetricFamily("xds_audit_outbox_depth", "Audit records not yet delivered to "
                                "the Audit Record Repository (every record, without one).",
                                value=depth)


class Metrics:
    """The request metrics of one app on ``engine``.

    Create it in the process that serves (a forked worker creates its own): with
    ``PROMETHEUS_MULTIPROC_DIR`` set, samples go to that directory and ``exposition`` sums
    every worker's; otherwise they live in this object's own registry.
    """

    def __init__(self, engine: Engine) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        self.engine = engine
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if self.multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_ENV} was set")
        registry = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter("xds_requests", "HTTP requests answered, by IHE transaction "
                                "and outcome.", ("transaction", "outcome"), registry=registry)
        self.seconds = Histogram("xds_request_seconds", "Time from the request to the last "
                                 "byte of the answer.", ("transaction",), buckets=_BUCKETS,
                                 registry=registry)
        self.received = Counter("xds_http_bytes_received", "Request body bytes received.",
                                ("transaction",), registry=registry)
        self.sent = Counter("xds_http_bytes_sent", "Response body bytes sent.",
                            ("transaction",), registry=registry)
        if registry is not None:
            registry.register(_ScrapeGauges(engine))
        self._registry = registry

    def observe(self, transaction: str, outcome: str, seconds: float, received: int,
                sent: int) -> None:
        """Count one answered request."""
        self.requests.labels(transaction, outcome).inc()
        self.seconds.labels(transaction).observe(seconds)
        self.received.labels(transaction).inc(received)
        self.sent.labels(transaction).inc(sent)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (blocking: the outbox COUNT)."""
        from prometheus_client import generate_latest

        return generate_latest(self._scrape_registry())

    def _scrape_registry(self) -> CollectorRegistry:
        if self._registry is not None:
            return self._registry
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_ScrapeGauges(self.engine))
        return registry


class RequestMetrics:
    """ASGI middleware: times each HTTP request, counts its body bytes both ways and labels it.

    A SOAP endpoint leaves ``(wsa:Action, answer body or None)`` in ``scope["state"]`` under
    ``SoapEndpoint.ANSWER_STATE``: the transaction comes from TRANSACTIONS, the outcome from
    ``soap_outcome``. Other requests are labelled by ``path_transaction`` and their HTTP
    status (success, 4xx, 5xx). The probes and /metrics itself are not counted.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, *, fhir_path: str,
                 prefixes: Mapping[str, str]) -> None:
        self.app, self.metrics = app, metrics
        self.fhir_path, self.prefixes = fhir_path, dict(prefixes)
        self.skip = frozenset({METRICS_PATH, HEALTHZ_PATH, READYZ_PATH})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        # Created here, so that every copy of the scope down the stack shares this dict.
        state: dict[str, Any] = scope.setdefault("state", {})
        method, path = scope["method"], scope["path"]
        started = time.perf_counter()
        received = sent = 0
        labels: tuple[str, str] | None = None

        def label(status: int) -> tuple[str, str]:
            # Popped: a SOAP answer body is not kept alive while the response streams.
            answer = state.pop(SoapEndpoint.ANSWER_STATE, None)
            if answer is not None:
                action, body = answer
                return TRANSACTIONS.get(action, "other"), soap_outcome(body)
            return (path_transaction(method, path, self.fhir_path, self.prefixes),
                    _status_outcome(status))

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal sent, labels
            if message["type"] == "http.response.start":
                labels = label(int(message["status"]))
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            # No response started: the error middleware outside answers 500.
            transaction, outcome = labels or label(500)
            self.metrics.observe(transaction, outcome, time.perf_counter() - started,
                                 received, sent)


def metrics_route(metrics: Metrics) -> Route:
    """``GET /metrics``: the exposition, built in a worker thread."""

    async def endpoint(_request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(await run_in_threadpool(metrics.exposition),
                        media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, endpoint, methods=["GET"])


def prepare_multiprocess(directory: Path) -> None:
    """Before forking workers: ``directory`` created empty and named in PROMETHEUS_MULTIPROC_DIR
    (samples of an earlier run would otherwise be summed in)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def process_exited(pid: int) -> None:
    """Tell prometheus-client a worker is gone (its live gauges are dropped; its counts stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
