"""Prometheus metrics: base units, `_total` counters, bounded labels.

Model labels are configured aliases, or owner/name for the first `model_label_limit`
distinct models seen; everything past that is `other`. A version hash, prediction id,
prompt or token is never a label. Every label value of every metric passes through
`label_value`, which bounds its length, so no caller-chosen name (or upstream string) can
make a scrape large.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable
from typing import Any, Self

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.metrics import MetricWrapperBase

from inference_gateway import __version__

__all__ = [
    "MAX_LABEL_CHARS",
    "OTHER_MODEL",
    "Metrics",
    "MetricsError",
    "ModelLabels",
    "label_value",
]

OTHER_MODEL = "other"
# Room for any model id the gateway accepts (model_ids.MAX_MODEL_ID_CHARS) and a long alias.
MAX_LABEL_CHARS = 256
_CUT = "…"
# Replicate stops a prediction after 30 minutes; the buckets reach that far.
_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 45, 60, 90, 120, 180,
    300, 450, 600, 900, 1200, 1800,
)  # fmt: skip
# A submitted prediction may run up to its deadline (a day at most, by default).
_OPERATION_BUCKETS = (*_LATENCY_BUCKETS, 3600, 7200, 14400, 43200, 86400)
_FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def label_value(value: object) -> str:
    """A label value, cut to MAX_LABEL_CHARS characters (marked with a trailing "…")."""
    text = str(value)
    if len(text) <= MAX_LABEL_CHARS:
        return text
    return text[: MAX_LABEL_CHARS - len(_CUT)] + _CUT


_NO_CHILDREN: dict[tuple[Any, ...], Any] = {}


class _BoundedLabels(MetricWrapperBase):
    """Sends every label value through `label_value`, whoever calls `labels`."""

    def labels(self, *values: Any, **named: Any) -> Self:
        # A labelset already seen is found in prometheus_client's own table of children
        # (keyed by the bounded str values, so a value to cut or convert is never found):
        # every call takes several children, and `labels`' checks, copies and lock were
        # about 3 % of a call's CPU. Removing or clearing a child empties the same table.
        child: Self | None = None if named else getattr(self, "_metrics", _NO_CHILDREN).get(values)
        if child is not None:
            return child
        return super().labels(
            *map(label_value, values), **{k: label_value(v) for k, v in named.items()}
        )


class _Counter(_BoundedLabels, Counter):
    pass


class _Gauge(_BoundedLabels, Gauge):
    pass


class _Histogram(_BoundedLabels, Histogram):
    pass


class MetricsError(ValueError):
    """A metrics setting that would break the label bounds."""


class ModelLabels:
    """Caps the model label's cardinality."""

    def __init__(self, aliases: Iterable[str], limit: int) -> None:
        if limit < 0:
            raise MetricsError(
                f"model_label_limit must be 0 or more (0 labels every unaliased model "
                f"{OTHER_MODEL!r}), got {limit}"
            )
        self._known = {label_value(alias) for alias in aliases}
        self._limit = limit + len(self._known)
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if not name:
            return OTHER_MODEL
        name = label_value(name)
        if name in self._known:
            return name
        with self._lock:
            if len(self._known) < self._limit:
                self._known.add(name)
                return name
        return OTHER_MODEL


class Metrics:
    """Every metric the gateway exports, on its own registry."""

    def __init__(
        self,
        *,
        aliases: Iterable[str] = (),
        model_label_limit: int = 50,
        prefix: str = "inference_gateway",
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The process's memory, CPU, open files and GC, as every Python exporter shows them.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.models = ModelLabels(aliases, model_label_limit)
        r, p = self.registry, prefix
        grpc_labels = ("grpc_type", "grpc_service", "grpc_method")
        self.grpc_started = _Counter(
            "grpc_server_started_total", "RPCs started on the server.", grpc_labels, registry=r
        )
        self.grpc_handled = _Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, regardless of outcome.",
            (*grpc_labels, "grpc_code"),
            registry=r,
        )
        self.grpc_handling = _Histogram(
            "grpc_server_handling_seconds",
            "Time to handle an RPC, until its status is sent.",
            grpc_labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_duration = _Histogram(
            f"{p}_request_duration_seconds",
            "End-to-end request latency, including queueing and cold boots on Replicate.",
            ("rpc", "model"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_duration = _Histogram(
            f"{p}_queue_duration_seconds",
            "Replicate queue time (started_at - created_at), where a cold boot shows.",
            ("model",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.predict_duration = _Histogram(
            f"{p}_predict_duration_seconds",
            "Time the model ran (Replicate's metrics.predict_time).",
            ("model",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = _Histogram(
            f"{p}_time_to_first_token_seconds",
            "From the request's arrival to the first streamed text.",
            ("model",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cold_boots = _Counter(
            f"{p}_cold_boots_total",
            "Predictions whose queue time exceeded the cold-boot threshold.",
            ("model",),
            registry=r,
        )
        self.predictions = _Counter(
            f"{p}_predictions_total",
            "Predictions by final status.",
            ("model", "status"),
            registry=r,
        )
        self.upstream_requests = _Counter(
            f"{p}_upstream_requests_total",
            "HTTP requests sent to Replicate, by endpoint and status class.",
            ("endpoint", "status_class"),
            registry=r,
        )
        self.upstream_duration = _Histogram(
            f"{p}_upstream_request_duration_seconds",
            "Duration of HTTP requests to Replicate (held creates and streams included).",
            ("endpoint",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_retries = _Counter(
            f"{p}_upstream_retries_total",
            "Requests to Replicate sent again after a retryable fault.",
            ("endpoint",),
            registry=r,
        )
        self.cancels_sent = _Counter(
            f"{p}_cancels_sent_total",
            "Predictions the gateway canceled on Replicate, by why.",
            ("reason",),
            registry=r,
        )
        self.rate_limit_waits = _Counter(
            f"{p}_rate_limit_waits_total",
            "Requests that waited for a slot in a Replicate rate budget.",
            ("bucket",),
            registry=r,
        )
        self.rate_limit_wait_seconds = _Histogram(
            f"{p}_rate_limit_wait_seconds",
            "How long requests waited for a rate-budget slot.",
            ("bucket",),
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.rate_limit_rejections = _Counter(
            f"{p}_rate_limit_rejections_total",
            "Requests refused because a rate budget could not serve them within their deadline.",
            ("bucket",),
            registry=r,
        )
        self.input_tokens = _Counter(
            f"{p}_input_tokens_total", "Prompt tokens Replicate reported.", ("model",), registry=r
        )
        self.output_tokens = _Counter(
            f"{p}_output_tokens_total",
            "Generated tokens Replicate reported.",
            ("model",),
            registry=r,
        )
        self.in_flight = _Gauge(
            f"{p}_requests_in_flight", "Requests being handled, by RPC.", ("rpc",), registry=r
        )
        self.operations_in_flight = _Gauge(
            f"{p}_operations_in_flight",
            "Submitted predictions this replica is following to their end.",
            registry=r,
        )
        self.operation_duration = _Histogram(
            f"{p}_operation_duration_seconds",
            "From submission to the end of a submitted prediction, cold boots included.",
            ("model", "status"),
            buckets=_OPERATION_BUCKETS,
            registry=r,
        )
        self.build_info = _Gauge(
            f"{p}_build_info",
            "Always 1; labels say which build is running.",
            ("version", "python_version"),
            registry=r,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.replicate_auth_ok = _Gauge(
            f"{p}_replicate_auth_ok",
            "Whether Replicate accepts the gateway's token: 1 at start-up it did, 0 it refused "
            "a token since (at start-up or on a call), -1 not known yet.",
            registry=r,
        )
        self.replicate_auth_ok.set(-1)
        self.output_bytes_held = _Gauge(
            f"{p}_output_bytes_held",
            "Bytes of output files fetched for include_data that calls in flight hold; "
            "GATEWAY_OUTPUT_BYTES_BUDGET bounds them.",
            registry=r,
        )
        self.schema_cache_entries = _Gauge(
            f"{p}_schema_cache_entries",
            "Models whose input schema (or its absence) is remembered; "
            "GATEWAY_SCHEMA_CACHE_SIZE bounds them.",
            registry=r,
        )
        for bucket in ("create", "other"):
            self.rate_limit_waits.labels(bucket)
            self.rate_limit_rejections.labels(bucket)
        self.state_store_duration = _Histogram(
            f"{p}_state_store_duration_seconds",
            "Duration of calls to the shared state store, failed ones included.",
            ("backend", "op"),
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.state_store_errors = _Counter(
            f"{p}_state_store_errors_total",
            "Calls to the shared state store that failed or timed out.",
            ("backend", "op"),
            registry=r,
        )
        self.quota_refusals = _Counter(
            f"{p}_quota_refusals_total",
            "Calls refused because their caller was at a quota (callers: in the configuration).",
            ("caller", "quota"),
            registry=r,
        )
        self.idempotent_replays = _Counter(
            f"{p}_idempotent_replays_total",
            "Calls whose request_id was seen before: attached to its running prediction, "
            "or replayed from its stored end.",
            ("outcome",),
            registry=r,
        )
        self.state_fail_open = _Counter(
            f"{p}_state_fail_open_total",
            "Decisions made on this replica's own state because the shared store failed.",
            ("guarantee",),
            registry=r,
        )
        self.answers = _Counter(
            f"{p}_answers_total",
            "Calls answered, by the model that answered and how: primary, fallback or hedge.",
            ("model", "role"),
            registry=r,
        )
        self.fallbacks = _Counter(
            f"{p}_fallbacks_total",
            "Calls moved to a fallback model, by that model and why.",
            ("model", "reason"),
            registry=r,
        )
        self.hedges = _Counter(
            f"{p}_hedges_total",
            "Hedges due on a booting model: started, or refused by hedges_per_minute.",
            ("model", "outcome"),
            registry=r,
        )
        self.last_run = _Gauge(
            f"{p}_model_last_run_timestamp_seconds",
            "When a prediction of the model last finished here (a long gap: likely cold).",
            ("model",),
            registry=r,
        )
        self.last_boot = _Gauge(
            f"{p}_model_last_boot_seconds",
            "Queue time of the model's last cold boot seen here.",
            ("model",),
            registry=r,
        )

        # Chargeback: what each caller ran, by model label; callers are configured, so the
        # caller label is bounded as the model label is.
        chargeback = ("caller", "model")
        self.cost = _Counter(
            f"{p}_cost_total",
            "Estimated cost of predictions, in the price table's currency (pricing: in the "
            "configuration); unpriced predictions count in unpriced_predictions_total instead.",
            chargeback,
            registry=r,
        )
        self.unpriced = _Counter(
            f"{p}_unpriced_predictions_total",
            "Predictions whose cost is unknown: no price for the model, or a quantity its "
            "price needs was not reported.",
            chargeback,
            registry=r,
        )
        self.spend_unrecorded = _Counter(
            f"{p}_spend_unrecorded_total",
            "Spend, in the price table's currency, the shared store could not record (it was "
            "unreachable): missing from the callers' spend records and budgets.",
            registry=r,
        )
        self.caller_predict_seconds = _Counter(
            f"{p}_caller_predict_seconds_total",
            "Replicate predict time by caller, model and endpoint kind (deployment: to share "
            "out a deployment's bill, whose boot and idle time no call can be charged).",
            (*chargeback, "endpoint"),
            registry=r,
        )
        self.caller_tokens = _Counter(
            f"{p}_caller_tokens_total",
            "Tokens Replicate reported, by caller, model and direction (input or output).",
            (*chargeback, "direction"),
            registry=r,
        )
        self.caller_images = _Counter(
            f"{p}_caller_images_total",
            "Images made (metrics.image_count, else output files), by caller and model.",
            chargeback,
            registry=r,
        )
        self.cache_lookups = _Counter(
            f"{p}_cache_lookups_total",
            "Response cache decisions by model: hit, miss, bypass (the request said so) or "
            "unreproducible (no seed reaches the model and the alias is not deterministic).",
            ("model", "result"),
            registry=r,
        )
        self.cache_stores = _Counter(
            f"{p}_cache_stores_total",
            "Answers offered to the response cache: stored, too_large (over "
            "GATEWAY_CACHE_MAX_ENTRY_BYTES), full (GATEWAY_CACHE_MAX_BYTES) or failed.",
            ("result",),
            registry=r,
        )

    # The UpstreamObserver protocol of the Replicate client.
    def request_done(self, endpoint: str, status_class: str, seconds: float) -> None:
        self.upstream_requests.labels(endpoint, status_class).inc()
        self.upstream_duration.labels(endpoint).observe(seconds)

    def retried(self, endpoint: str) -> None:
        self.upstream_retries.labels(endpoint).inc()

    def rate_limit_waited(self, bucket: str, seconds: float) -> None:
        self.rate_limit_waits.labels(bucket).inc()
        self.rate_limit_wait_seconds.labels(bucket).observe(seconds)

    def rate_limit_rejected(self, bucket: str) -> None:
        self.rate_limit_rejections.labels(bucket).inc()

    # The QuotaObserver protocol of admission.
    def quota_refused(self, caller: str, quota: str) -> None:
        self.quota_refusals.labels(caller, quota).inc()

    # The ReplayObserver protocol of idempotency.
    def idempotent_replay(self, outcome: str) -> None:
        self.idempotent_replays.labels(outcome).inc()

    # The StoreObserver protocol of the shared state.
    def store_call(self, backend: str, op: str, seconds: float, ok: bool) -> None:
        self.state_store_duration.labels(backend, op).observe(seconds)
        if not ok:
            self.state_store_errors.labels(backend, op).inc()

    def store_fail_open(self, guarantee: str) -> None:
        self.state_fail_open.labels(guarantee).inc()

    def model_ran(self, model: str, boot_seconds: float | None) -> None:
        """A prediction of `model` finished; `boot_seconds` when it booted cold."""
        self.last_run.labels(model).set_to_current_time()
        if boot_seconds is not None:
            self.last_boot.labels(model).set(boot_seconds)

    # The RoutingObserver protocol of the router.
    def fell_back(self, model: str, reason: str) -> None:
        self.fallbacks.labels(model, reason).inc()

    def hedge(self, model: str, outcome: str) -> None:
        self.hedges.labels(model, outcome).inc()

    # The CancelObserver protocol of the prediction runner.
    def cancel_sent(self, reason: str) -> None:
        self.cancels_sent.labels(reason).inc()
