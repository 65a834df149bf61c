"""Operations endpoints of the HTTP app: liveness and readiness probes, Prometheus metrics."""

from xds.ops.health import HEALTHZ_PATH, READYZ_PATH, Readiness, health_routes
from xds.ops.metrics import METRICS_PATH, Metrics, RequestMetrics, metrics_route

__all__ = ["HEALTHZ_PATH", "READYZ_PATH", "METRICS_PATH", "Readiness", "health_routes",
           "Metrics", "RequestMetrics", "metrics_route"]
