"""Offline checks of deploy/: the image recipe, the Kubernetes base, alerts and dashboard.

Everything runs locally (kubectl kustomize, kubernetes-validate, promtool) and nothing
reaches a cluster, a registry or the network. A missing tool fails its test with the
command that installs it: a check that skips on CI is a check nobody runs.

The metric catalogue below is the gateway's published metric list, written down here
independently of the code that exports it, so that a renamed metric breaks the alerts
and the dashboard here rather than silently in production.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest
import yaml
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2

# The slow tier: these run the deploy tools (kubectl, kubernetes-validate, promtool).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BASE = DEPLOY / "kubernetes" / "base"
INFLIGHT_PATCH = DEPLOY / "kubernetes" / "optional" / "hpa-inflight-requests.yaml"
HEADLESS_SERVICE = DEPLOY / "kubernetes" / "optional" / "service-headless.yaml"
REDIS_OVERLAY = DEPLOY / "kubernetes" / "overlays" / "redis"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INSTALL_HINT = "run deploy/install-tools.sh (see deploy/README.md)"

# The oldest Kubernetes with GA native gRPC probes, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")
# The gateway's defaults for the flags that bound a drain.
DEFAULT_DRAIN_DELAY_S = 5
DEFAULT_GRACE_PERIOD_S = 25
SHUTDOWN_MARGIN_S = 5
JOB = "inference-gateway"

Manifest = dict[str, Any]


class DeployParseError(ValueError):
    """Text that one of this module's readers (PromQL, Dockerfile, quantities) cannot read."""


# --- the metric catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class MetricFamily:
    kind: str  # "counter", "gauge" or "histogram"
    labels: frozenset[str]


def _family(kind: str, *labels: str) -> MetricFamily:
    return MetricFamily(kind, frozenset(labels))


_GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
METRICS: dict[str, MetricFamily] = {
    "grpc_server_started_total": _family("counter", *_GRPC_LABELS),
    "grpc_server_handled_total": _family("counter", *_GRPC_LABELS, "grpc_code"),
    "grpc_server_handling_seconds": _family("histogram", *_GRPC_LABELS),
    "inference_gateway_request_duration_seconds": _family("histogram", "rpc", "model"),
    "inference_gateway_queue_duration_seconds": _family("histogram", "model"),
    "inference_gateway_predict_duration_seconds": _family("histogram", "model"),
    "inference_gateway_time_to_first_token_seconds": _family("histogram", "model"),
    "inference_gateway_cold_boots_total": _family("counter", "model"),
    "inference_gateway_predictions_total": _family("counter", "model", "status"),
    "inference_gateway_upstream_requests_total": _family("counter", "endpoint", "status_class"),
    "inference_gateway_upstream_retries_total": _family("counter", "endpoint"),
    "inference_gateway_cancels_sent_total": _family("counter", "reason"),
    "inference_gateway_rate_limit_waits_total": _family("counter", "bucket"),
    "inference_gateway_rate_limit_rejections_total": _family("counter", "bucket"),
    "inference_gateway_input_tokens_total": _family("counter", "model"),
    "inference_gateway_output_tokens_total": _family("counter", "model"),
    "inference_gateway_requests_in_flight": _family("gauge", "rpc"),
    "inference_gateway_operations_in_flight": _family("gauge"),
    "inference_gateway_operation_duration_seconds": _family("histogram", "model", "status"),
    "inference_gateway_build_info": _family("gauge", "version"),
    "inference_gateway_replicate_auth_ok": _family("gauge"),
    "inference_gateway_state_store_duration_seconds": _family("histogram", "backend", "op"),
    "inference_gateway_state_store_errors_total": _family("counter", "backend", "op"),
    "inference_gateway_state_fail_open_total": _family("counter", "guarantee"),
    "inference_gateway_quota_refusals_total": _family("counter", "caller", "quota"),
    "inference_gateway_cost_total": _family("counter", "caller", "model"),
    "inference_gateway_unpriced_predictions_total": _family("counter", "caller", "model"),
    "inference_gateway_caller_predict_seconds_total": _family(
        "counter", "caller", "model", "endpoint"
    ),
    "inference_gateway_caller_tokens_total": _family("counter", "caller", "model", "direction"),
    "inference_gateway_caller_images_total": _family("counter", "caller", "model"),
    "inference_gateway_cache_lookups_total": _family("counter", "model", "result"),
    "inference_gateway_cache_stores_total": _family("counter", "result"),
    "inference_gateway_idempotent_replays_total": _family("counter", "outcome"),
}
# Labels the Prometheus Operator gives every target of a ServiceMonitor.
OPERATOR_TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}
)
# What is left after the ServiceMonitor drops the one the gateway's metrics use themselves.
TARGET_LABELS = OPERATOR_TARGET_LABELS - {"endpoint"}


def _series_labels() -> dict[str, frozenset[str]]:
    """Every series name a query may use, with the labels it carries."""
    series: dict[str, frozenset[str]] = {"up": frozenset()}  # written by Prometheus itself
    for name, family in METRICS.items():
        if family.kind == "histogram":
            series[f"{name}_bucket"] = family.labels | {"le"}
            series[f"{name}_sum"] = family.labels
            series[f"{name}_count"] = family.labels
        else:
            series[name] = family.labels
    return {name: labels | TARGET_LABELS for name, labels in series.items()}


SERIES = _series_labels()


def _grpc_names() -> tuple[set[str], set[str]]:
    """gRPC service and method names the server registers, read from their descriptors."""
    descriptors = [
        gateway_pb2.DESCRIPTOR.services_by_name["InferenceGateway"],
        health_pb2.DESCRIPTOR.services_by_name["Health"],
    ]
    services = {d.full_name for d in descriptors} | {reflection.SERVICE_NAME}
    methods = {m.name for d in descriptors for m in d.methods} | {"ServerReflectionInfo"}
    return services, methods


_SERVICES, _METHODS = _grpc_names()
LABEL_VALUES: dict[str, set[str]] = {
    "grpc_code": {code.name for code in grpc.StatusCode},
    "grpc_type": {"unary", "client_stream", "server_stream", "bidi_stream"},
    "grpc_service": _SERVICES,
    "grpc_method": _METHODS,
    "status": {"succeeded", "failed", "canceled", "aborted"},
    "endpoint": {"create", "get", "cancel", "stream", "model", "version", "deployment", "file"},
    "status_class": {"2xx", "3xx", "4xx", "5xx", "error"},
    "reason": {"caller_cancelled", "deadline", "shutdown"},
    "bucket": {"create", "other"},
    "job": {JOB},
}


# --- a PromQL reader: which series and labels an expression names ------------------------


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class PromQLNames:
    selectors: tuple[Selector, ...]
    grouping_labels: frozenset[str]

    @property
    def metrics(self) -> set[str]:
        return {s.metric for s in self.selectors}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


_PROMQL_TOKEN = re.compile(
    r"""
      (?P<space>\s+|\#[^\n]*)
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
    | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
                 [a-zA-Z0-9_]*)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^=<>(){}\[\],:@])
    """,
    re.VERBOSE,
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
_MATCH_OPS = {"=", "!=", "=~", "!~"}
_CLOSERS = {"(": ")", "{": "}", "[": "]"}


def _promql_tokens(expr: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expr):
        match = _PROMQL_TOKEN.match(expr, pos)
        if match is None or match.lastgroup is None:
            raise DeployParseError(f"PromQL: cannot read {expr[pos : pos + 12]!r} at {pos}")
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    stack: list[_Token] = []
    for token in tokens:
        if token.text in _CLOSERS:
            stack.append(token)
        elif token.text in _CLOSERS.values() and (
            not stack or _CLOSERS[stack.pop().text] != token.text
        ):
            raise DeployParseError(f"PromQL: unbalanced {token.text!r} at {token.pos}")
    if stack:
        raise DeployParseError(f"PromQL: {stack[-1].text!r} at {stack[-1].pos} is never closed")
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    if token.text[0] == "`":
        return body
    escapes = {"n": "\n", "t": "\t", "r": "\r"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m[1], m[1]), body, flags=re.DOTALL)


def _expect(tokens: list[_Token], i: int, what: str) -> _Token:
    if i >= len(tokens):
        raise DeployParseError(f"PromQL: expected {what} at the end")
    return tokens[i]


def _read_matchers(tokens: list[_Token], i: int) -> tuple[tuple[Matcher, ...], int]:
    """Reads `{label op "value", ...}` starting at the `{`; returns the index after `}`."""
    matchers: list[Matcher] = []
    i += 1
    while _expect(tokens, i, "a label or '}'").text != "}":
        label, op, value = (_expect(tokens, i + k, "a label matcher") for k in range(3))
        if label.kind != "ident" or op.text not in _MATCH_OPS or value.kind != "string":
            raise DeployParseError(f"PromQL: bad label matcher at {label.pos}")
        matchers.append(Matcher(label.text, op.text, _unquote(value)))
        i += 3
        separator = _expect(tokens, i, "',' or '}'")
        if separator.text == ",":
            i += 1
        elif separator.text != "}":
            raise DeployParseError(f"PromQL: expected ',' or '}}' at {separator.pos}")
    return tuple(matchers), i + 1


def _read_label_list(tokens: list[_Token], i: int) -> tuple[set[str], int]:
    """Reads `(label, ...)` starting at the `(`; returns the index after `)`."""
    labels: set[str] = set()
    i += 1
    while (token := _expect(tokens, i, "a label or ')'")).text != ")":
        if token.kind != "ident":
            raise DeployParseError(f"PromQL: expected a label name at {token.pos}")
        labels.add(token.text)
        i += 1
        if _expect(tokens, i, "',' or ')'").text == ",":
            i += 1
    return labels, i + 1


def parse_promql_names(expr: str) -> PromQLNames:
    """Finds the selectors and grouping labels of an expression without evaluating it.

    Enough of PromQL's grammar to tell metric names from function names, keywords,
    label names and durations; promtool checks the rest of the syntax.
    """
    tokens = _promql_tokens(expr)
    selectors: list[Selector] = []
    grouping: set[str] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1].text if i + 1 < len(tokens) else ""
        word = token.text.lower()
        if token.text == "[":  # a range or subquery: durations only
            i = next(j for j in range(i, len(tokens)) if tokens[j].text == "]") + 1
        elif token.text == "{":
            matchers, i = _read_matchers(tokens, i)
            names = [m.value for m in matchers if m.label == "__name__" and m.op == "="]
            if not names:
                raise DeployParseError(f"PromQL: selector at {token.pos} names no metric")
            selectors.append(Selector(names[0], matchers))
        elif token.kind != "ident":
            i += 1
        elif word in _GROUPING:
            if following == "(":
                labels, i = _read_label_list(tokens, i + 1)
                grouping |= labels
            else:
                i += 1
        elif (
            word in _KEYWORDS
            or following == "("
            or (word in _AGGREGATIONS and following.lower() in {"by", "without"})
        ):
            i += 1
        elif following == "{":
            matchers, i = _read_matchers(tokens, i + 1)
            selectors.append(Selector(token.text, matchers))
        else:
            selectors.append(Selector(token.text, ()))
            i += 1
    return PromQLNames(tuple(selectors), frozenset(grouping))


_LITERAL_ALTERNATIVES = re.compile(r"[\w.+-]+(?:\|[\w.+-]+)*")


def promql_problems(expr: str) -> list[str]:
    """What in an expression does not exist in the metric catalogue, in words."""
    names = parse_promql_names(expr)
    problems: list[str] = []
    known_labels: set[str] = set(TARGET_LABELS)
    for selector in names.selectors:
        labels = SERIES.get(selector.metric)
        if labels is None:
            problems.append(f"unknown metric {selector.metric}")
            continue
        known_labels |= labels
        for m in selector.matchers:
            if m.label != "__name__" and m.label not in labels:
                problems.append(f"{selector.metric} has no label {m.label}")
            allowed = LABEL_VALUES.get(m.label)
            if allowed is None or "$" in m.value:  # "$model" is a Grafana variable
                continue
            if m.op in {"=", "!="}:
                values = [m.value]
            elif _LITERAL_ALTERNATIVES.fullmatch(m.value):
                values = m.value.split("|")
            else:
                continue
            problems += [f"{m.label} is never {v!r}" for v in values if v not in allowed]
    unknown_grouping = sorted(names.grouping_labels - known_labels)
    problems += [f"no metric here has label {label}" for label in unknown_grouping]
    return problems


# --- tools -------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: {INSTALL_HINT}")
    return path


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def _kustomize(directory: Path) -> list[Manifest]:
    result = _run(_tool("kubectl"), "kustomize", str(directory))
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.fail(f"kubernetes-validate is not installed in this interpreter: {INSTALL_HINT}")
    versions = [arg for v in KUBERNETES_VERSIONS for arg in ("-k", v)]
    return _run(sys.executable, "-m", "kubernetes_validate", "--strict", *versions, str(path))


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return _run(_tool("promtool"), *args, cwd=cwd)


def _write_manifests(path: Path, manifests: list[Manifest]) -> Path:
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def rendered() -> list[Manifest]:
    return _kustomize(BASE)


def _one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _container(manifests: list[Manifest]) -> dict[str, Any]:
    containers = _one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


# --- Kubernetes base ---------------------------------------------------------------------


def test_base_renders_every_resource(rendered: list[Manifest]) -> None:
    kinds = sorted(m["kind"] for m in rendered)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceMonitor",
        ]
    )


def test_builtin_kinds_pass_strict_schema_validation(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    builtins = [m for m in rendered if m["kind"] != "ServiceMonitor"]
    result = _kubernetes_validate(_write_manifests(tmp_path / "base.yaml", builtins))
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "WARN" not in report, report
    assert report.count(" passed ") == len(builtins) * len(KUBERNETES_VERSIONS), report


def test_strict_validation_rejects_a_misspelt_field(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    """Proves the check above can fail: --strict must reject fields Kubernetes ignores."""
    deployment = copy.deepcopy(_one(rendered, "Deployment"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["grpc"]["serviceName"] = probe["grpc"].pop("service")
    result = _kubernetes_validate(_write_manifests(tmp_path / "bad.yaml", [deployment]))
    assert result.returncode != 0
    assert "serviceName" in result.stdout


def test_kubernetes_validate_cannot_check_the_servicemonitor(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    """kubernetes-validate bundles built-in schemas only: for a CRD it warns and passes.

    That is why the ServiceMonitor is checked against a schema of its own below. When this
    test fails, kubernetes-validate has learnt the CRD and that schema can go.
    """
    monitor = _one(rendered, "ServiceMonitor")
    result = _kubernetes_validate(_write_manifests(tmp_path / "monitor.yaml", [monitor]))
    assert result.returncode == 0
    assert "Couldn't find schema for kind ServiceMonitor" in result.stdout


_PROMETHEUS_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STRINGS = {"type": "array", "items": {"type": "string"}}
# The CRD accepts each relabeling action in CamelCase and in lower case.
_RELABEL_ACTIONS = (
    "Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop", "LabelKeep",
    "Lowercase", "Uppercase", "KeepEqual", "DropEqual",
)  # fmt: skip
_RELABEL_CONFIG = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "action": {"enum": [s for a in _RELABEL_ACTIONS for s in (a, a.lower())]},
        "sourceLabels": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
        },
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
    },
}
# Fields of monitoring.coreos.com/v1 ServiceMonitor as the Prometheus Operator's CRD
# defines them, limited to the ones a gateway needs. Anything else is rejected: stricter
# than the CRD, and it catches a misspelt field that the API server would drop or refuse.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "targetLabels": _STRINGS,
                "podTargetLabels": _STRINGS,
                "sampleLimit": {"type": "integer", "minimum": 0},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": _STRINGS},
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "operator"],
                                "additionalProperties": False,
                                "properties": {
                                    "key": {"type": "string"},
                                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                    "values": _STRINGS,
                                },
                            },
                        },
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        # The CRD documents port and targetPort as mutually exclusive.
                        "not": {"required": ["port", "targetPort"]},
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["integer", "string"]},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": _PROMETHEUS_DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": _PROMETHEUS_DURATION},
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": _RELABEL_CONFIG},
                        },
                    },
                },
            },
        },
    },
}


def test_servicemonitor_matches_its_crd_fields(rendered: list[Manifest]) -> None:
    jsonschema.validate(_one(rendered, "ServiceMonitor"), SERVICE_MONITOR_SCHEMA)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval", "30 seconds"),
        ("scheme", "grpc"),
        ("targetPort", 9464),
        ("timeout", "10s"),
        ("relabelings", [{"action": "dropLabel", "regex": "endpoint"}]),
    ],
)
def test_servicemonitor_schema_rejects_bad_endpoints(
    rendered: list[Manifest], field: str, value: object
) -> None:
    monitor = copy.deepcopy(_one(rendered, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0][field] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)


def _alert_jobs() -> set[str]:
    """Every job a rule selects."""
    return {
        m.value
        for rule in _alert_rules()
        for s in parse_promql_names(rule["expr"]).selectors
        for m in s.matchers
        if m.label == "job"
    }


def test_servicemonitor_scrapes_the_metrics_port_as_the_alerts_job(
    rendered: list[Manifest],
) -> None:
    monitor, service = _one(rendered, "ServiceMonitor"), _one(rendered, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    container_ports = {p["name"]: p["containerPort"] for p in _container(rendered)["ports"]}
    assert container_ports[ports[endpoint["port"]]["targetPort"]] == 9464
    # The job label comes from this Service label; the alerts must select that job.
    assert _alert_jobs() == {service["metadata"]["labels"][monitor["spec"]["jobLabel"]]}


def test_scraping_keeps_the_metrics_own_labels(rendered: list[Manifest]) -> None:
    """A target label that a metric also carries renames the metric's to exported_<label>."""
    (endpoint,) = _one(rendered, "ServiceMonitor")["spec"]["endpoints"]
    dropped = {
        label
        for relabeling in endpoint.get("relabelings", [])
        if relabeling["action"].lower() == "labeldrop"
        for label in OPERATOR_TARGET_LABELS
        if re.fullmatch(relabeling["regex"], label)
    }
    metric_labels = set().union(*(family.labels for family in METRICS.values()))
    assert not (OPERATOR_TARGET_LABELS - dropped) & metric_labels
    assert OPERATOR_TARGET_LABELS - dropped == TARGET_LABELS


def test_service_routes_grpc_and_metrics_to_the_pods(rendered: list[Manifest]) -> None:
    service, deployment = _one(rendered, "Service"), _one(rendered, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in _container(rendered)["ports"]}
    routes = {
        p["name"]: (p["port"], container_ports[p["targetPort"]], p.get("appProtocol"))
        for p in service["spec"]["ports"]
    }
    assert routes == {"grpc": (50051, 50051, "grpc"), "metrics": (9464, 9464, "http")}


def test_probes_ask_the_health_service_for_readiness_and_liveness(
    rendered: list[Manifest],
) -> None:
    container = _container(rendered)
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    probes = {
        kind: container[f"{kind}Probe"]["grpc"] for kind in ("startup", "readiness", "liveness")
    }
    assert probes["readiness"] == {"port": grpc_port, "service": "readiness"}
    assert probes["liveness"] == {"port": grpc_port, "service": "liveness"}
    # Started means alive; readiness then decides when traffic may come.
    assert probes["startup"] == probes["liveness"]


def test_pods_run_restricted(rendered: list[Manifest]) -> None:
    pod = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    container = _container(rendered)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False


def _flag(args: list[str], name: str, default: int) -> int:
    values = [int(a.split("=", 1)[1]) for a in args if a.startswith(f"--{name}=")]
    assert len(values) <= 1, f"--{name} given twice"
    return values[0] if values else default


def test_termination_grace_covers_the_drain(rendered: list[Manifest]) -> None:
    pod = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    args = _container(rendered).get("args", [])
    drain = _flag(args, "drain-delay", DEFAULT_DRAIN_DELAY_S)
    grace = _flag(args, "grace-period", DEFAULT_GRACE_PERIOD_S)
    prestop = "lifecycle" in _container(rendered)
    assert not prestop, "a preStop hook spends the same termination budget; account for it"
    assert pod["terminationGracePeriodSeconds"] >= drain + grace + SHUTDOWN_MARGIN_S


def test_config_and_token_come_from_the_generated_objects(rendered: list[Manifest]) -> None:
    container = _container(rendered)
    pod = _one(rendered, "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container["env"]}
    config_path = Path(env["GATEWAY_CONFIG"]["value"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = _one(rendered, "ConfigMap")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert isinstance(yaml.safe_load(config_map["data"][config_path.name]), dict)

    token_ref = env["REPLICATE_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = _one(rendered, "Secret")
    assert token_ref["name"] == secret["metadata"]["name"]
    token = base64.b64decode(secret["data"][token_ref["key"]]).decode()
    # Only an obvious placeholder may ever be committed.
    assert token.startswith("r8_test_")
    assert "placeholder" in token


_CPU = re.compile(r"([0-9]+)(m?)")
_MEMORY = re.compile(r"([0-9]+)(Mi|Gi)")


def cpu_millicores(quantity: str | int) -> int:
    match = _CPU.fullmatch(str(quantity))
    if match is None:
        raise DeployParseError(f"CPU quantity {quantity!r}: write whole cores or millicores")
    return int(match[1]) * (1 if match[2] else 1000)


def memory_bytes(quantity: str) -> int:
    match = _MEMORY.fullmatch(quantity)
    if match is None:
        raise DeployParseError(f"memory quantity {quantity!r}: write Mi or Gi")
    return int(match[1]) * 2 ** (20 if match[2] == "Mi" else 30)


def test_resources_fit_two_cores(rendered: list[Manifest]) -> None:
    resources = _container(rendered)["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert 0 < cpu_millicores(requests["cpu"]) <= cpu_millicores(limits["cpu"]) <= 2000
    assert 0 < memory_bytes(requests["memory"]) <= memory_bytes(limits["memory"])


@given(st.integers(min_value=0, max_value=10**6))
def test_quantity_readers_scale_units(n: int) -> None:
    assert cpu_millicores(f"{n}m") == n
    assert cpu_millicores(str(n)) == cpu_millicores(n) == n * 1000
    assert memory_bytes(f"{n}Mi") * 1024 == memory_bytes(f"{n}Gi") == n * 2**30


@given(st.text().filter(lambda s: not re.fullmatch(r"[0-9]+m?|[0-9]+[MG]i", s)))
def test_quantity_readers_reject_other_forms(text: str) -> None:
    with pytest.raises(DeployParseError):
        cpu_millicores(text)
    with pytest.raises(DeployParseError):
        memory_bytes(text)


def test_autoscaler_and_disruption_budget_fit_the_deployment(rendered: list[Manifest]) -> None:
    deployment = _one(rendered, "Deployment")
    hpa, pdb = _one(rendered, "HorizontalPodAutoscaler"), _one(rendered, "PodDisruptionBudget")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # The HPA owns the replica count; a fixed one would be reset on every apply.
    assert "replicas" not in deployment["spec"]
    # Without a custom-metrics adapter a Pods metric stops all scale-down: base is CPU only.
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


def test_inflight_autoscaling_patch_applies_and_validates(tmp_path: Path) -> None:
    """Builds an overlay with the optional patch, in the form kustomize v2 and v5 both read."""
    shutil.copytree(BASE, tmp_path / "base")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    shutil.copy(INFLIGHT_PATCH, overlay / INFLIGHT_PATCH.name)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "bases": ["../base"],
        "patchesJson6902": [
            {
                "target": {
                    "group": "autoscaling",
                    "version": "v2",
                    "kind": "HorizontalPodAutoscaler",
                    "name": "inference-gateway",
                },
                "path": INFLIGHT_PATCH.name,
            }
        ],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    hpa = _one(_kustomize(overlay), "HorizontalPodAutoscaler")
    pods_metrics = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert [m["metric"]["name"] for m in pods_metrics] == ["inference_gateway_requests_in_flight"]
    assert METRICS["inference_gateway_requests_in_flight"].kind == "gauge"
    result = _kubernetes_validate(_write_manifests(tmp_path / "hpa.yaml", [hpa]))
    assert result.returncode == 0, result.stdout
    assert "WARN" not in result.stdout, result.stdout


def _named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    [found] = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def test_redis_overlay_adds_a_redis_the_gateway_reaches_through_a_secret(
    tmp_path: Path, rendered: list[Manifest]
) -> None:
    manifests = _kustomize(REDIS_OVERLAY)
    result = _kubernetes_validate(_write_manifests(tmp_path / "redis.yaml", manifests))
    assert result.returncode == 0, result.stdout
    gateway = _named(manifests, "Deployment", "inference-gateway")
    [container] = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    # The base's Deployment, with one variable more.
    base_env = {e["name"] for e in _container(rendered)["env"]}
    assert set(env) == base_env | {"GATEWAY_REDIS_URL"}
    ref = env["GATEWAY_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    secret = _named(manifests, "Secret", ref["name"])
    url = base64.b64decode(secret["data"][ref["key"]]).decode()
    host_port = url.rsplit("@", 1)[1].split("/", 1)[0]
    service = _named(manifests, "Service", "inference-gateway-redis")
    assert host_port == f"{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    redis = _named(manifests, "Deployment", "inference-gateway-redis")
    pod = redis["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert redis["spec"]["replicas"] == 1
    [server] = pod["spec"]["containers"]
    args = server["args"]
    # Spend records survive a restart (an append-only file on a claimed volume), and no
    # record the guarantees rely on is evicted.
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--dir") + 1] == "/data"
    [data] = [v for v in pod["spec"]["volumes"] if v["name"] == "data"]
    claim = _named(manifests, "PersistentVolumeClaim", data["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    [mount] = [m for m in server["volumeMounts"] if m["name"] == "data"]
    assert mount["mountPath"] == "/data"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    password = {e["name"]: e for e in server["env"]}["REDIS_PASSWORD"]["valueFrom"]
    assert password["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert server["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    policy = _named(manifests, "NetworkPolicy", "inference-gateway-redis")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    [allowed] = policy["spec"]["ingress"][0]["from"]
    gateway_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert allowed["podSelector"]["matchLabels"].items() <= gateway_labels.items()


def test_headless_service_reaches_the_same_pods(rendered: list[Manifest]) -> None:
    headless = yaml.safe_load(HEADLESS_SERVICE.read_text())
    result = _kubernetes_validate(HEADLESS_SERVICE)
    assert result.returncode == 0, result.stdout
    assert "WARN" not in result.stdout, result.stdout
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == _one(rendered, "Service")["spec"]["selector"]
    (port,) = headless["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in _container(rendered)["ports"]}
    monitored = _one(rendered, "ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert not monitored.items() <= headless["metadata"]["labels"].items()


# --- Dockerfile ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as Docker reads them."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        keyword, _, arguments = " ".join([*pending, stripped]).partition(" ")
        pending = []
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    if pending:
        raise DeployParseError("Dockerfile: the last instruction ends with a line continuation")
    return instructions


def split_stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each from its FROM on; global ARGs before the first are left out."""
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def docker_stages() -> list[list[Instruction]]:
    stages = split_stages(parse_dockerfile(DOCKERFILE.read_text()))
    assert len(stages) == 2, "expected a build stage and a runtime stage"
    return stages


def _arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == keyword]


def test_image_runs_the_console_script_as_a_numeric_non_root_user(
    docker_stages: list[list[Instruction]], rendered: list[Manifest]
) -> None:
    runtime = docker_stages[-1]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = _arguments(runtime, "ENTRYPOINT")
    # Exec form (a JSON list), so that SIGTERM reaches the gateway and not a shell.
    assert json.loads(entrypoint) == ["inference-gateway", "serve"]
    assert "inference-gateway" in scripts
    user = _arguments(runtime, "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"USER {user}: Kubernetes can only check a numeric UID is not root"
    assert int(uid) > 0, f"USER {user} is root"
    pod_security = _one(rendered, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (int(uid), int(gid))


def test_image_exposes_the_ports_the_pod_declares(
    docker_stages: list[list[Instruction]], rendered: list[Manifest]
) -> None:
    exposed = {int(p) for args in _arguments(docker_stages[-1], "EXPOSE") for p in args.split()}
    assert exposed == {p["containerPort"] for p in _container(rendered)["ports"]} == {50051, 9464}


def test_stubs_are_generated_in_the_build_stage_only(
    docker_stages: list[list[Instruction]],
) -> None:
    build, runtime = docker_stages[0], docker_stages[-1]
    build_runs = " ".join(_arguments(build, "RUN"))
    assert "[dev]" in build_runs
    assert "-m inference_gateway.protogen service" in build_runs
    assert (REPO / "service" / "inference_gateway" / "protogen.py").is_file()
    runtime_text = " ".join(i.arguments for i in runtime)
    assert "[dev]" not in runtime_text
    assert "pip install" not in runtime_text
    # The build context must not carry the committed stubs, or the generation proves nothing.
    assert (
        "service/inference_gateway_protos/inference/gateway/v1/*_pb2*"
        in DOCKERIGNORE.read_text().splitlines()
    )


def test_image_bakes_in_no_secret() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r"r8_[A-Za-z0-9]", text)
    for instruction in parse_dockerfile(text):
        if instruction.keyword in {"ENV", "ARG"}:
            assert "TOKEN" not in instruction.arguments.upper(), instruction


def test_build_context_sends_what_the_dockerfile_copies(
    docker_stages: list[list[Instruction]],
) -> None:
    included = {
        line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line[:1] == "!"
    }
    copied = {
        source.rstrip("/")
        for stage in docker_stages
        for args in _arguments(stage, "COPY")
        if not args.startswith("--from")
        for source in args.split()[:-1]
    }
    assert copied == included
    assert all((REPO / path).exists() for path in copied)


_DOCKER_KEYWORDS = ["FROM", "RUN", "COPY", "ENV", "USER", "EXPOSE", "ENTRYPOINT", "LABEL"]
_DOCKER_WORDS = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"], include_characters="-_./=:[]\"'"),
    min_size=1,
    max_size=10,
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(_DOCKER_KEYWORDS),
            st.lists(_DOCKER_WORDS, min_size=1, max_size=6),
            st.lists(st.integers(min_value=1, max_value=5), max_size=3),
            st.booleans(),
        ),
        max_size=6,
    )
)
def test_dockerfile_reader_joins_continued_lines_and_drops_comments(
    spec: list[tuple[str, list[str], list[int], bool]],
) -> None:
    lines: list[str] = []
    for keyword, words, breaks, comment in spec:
        if comment:
            lines.append("# a comment \\")
        parts = [keyword, *words]
        cuts = sorted({min(b, len(parts) - 1) for b in breaks if b < len(parts)})
        pieces = [parts[a:b] for a, b in zip([0, *cuts], [*cuts, len(parts)], strict=True)]
        lines += [" ".join(p) + " \\" for p in pieces[:-1]] + ["    " + " ".join(pieces[-1])]
        lines.append("")
    expected = [Instruction(keyword, " ".join(words)) for keyword, words, _, _ in spec]
    assert parse_dockerfile("\n".join(lines)) == expected


def test_dockerfile_reader_rejects_a_dangling_continuation() -> None:
    with pytest.raises(DeployParseError, match="continuation"):
        parse_dockerfile("FROM python:3.11-slim\nRUN echo \\\n")


# --- Prometheus rules --------------------------------------------------------------------


def _rules(kind: str) -> list[dict[str, Any]]:
    """The file's rules of one kind: "alert" or "record"."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if kind in rule]


def _alert_rules() -> list[dict[str, Any]]:
    return _rules("alert")


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = _promtool("test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_actionable() -> None:
    for rule in _alert_rules():
        assert rule.get("for"), f"{rule['alert']} has no `for`"
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= annotations.keys(), rule["alert"]
        assert all(annotations[k].strip() for k in ("summary", "description", "runbook"))


def test_every_alert_is_unit_tested_both_ways() -> None:
    cases = [
        case
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    alerts = {rule["alert"] for rule in _alert_rules()}
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == alerts, "fires when it should"
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == alerts, "quiet otherwise"


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alerts_use_only_published_metrics(rule: dict[str, Any]) -> None:
    assert promql_problems(rule["expr"]) == []


@pytest.mark.parametrize("rule", _rules("record"), ids=lambda rule: str(rule["record"]))
def test_recording_rules_use_only_published_metrics_and_are_unit_tested(
    rule: dict[str, Any],
) -> None:
    assert promql_problems(rule["expr"]) == []
    tested = {
        case["expr"]
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("promql_expr_test", [])
    }
    assert rule["record"] in tested


# --- Grafana dashboard -------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels += [panel, *panel.get("panels", [])]
    return panels


def _dashboard_queries() -> list[str]:
    """Every PromQL query in the dashboard, Grafana's range variable made concrete."""
    queries = [
        target["expr"] for panel in _panels(_dashboard()) for target in panel.get("targets", [])
    ]
    return [q.replace("$__rate_interval", "5m") for q in queries]


_LABEL_VALUES_QUERY = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")


def _variable_queries() -> list[tuple[str, str]]:
    """(selector, label) of each `label_values` template variable."""
    found = []
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES_QUERY.fullmatch(variable["definition"])
            assert match, f"variable {variable['name']}: expected label_values(selector, label)"
            found.append((match["selector"], match["label"]))
    return found


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = _dashboard()
    panels = _panels(dashboard)
    assert dashboard["uid"]
    assert dashboard["title"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_dashboard_queries_use_only_published_metrics() -> None:
    problems = {q: p for q in _dashboard_queries() if (p := promql_problems(q))}
    assert problems == {}
    for selector, label in _variable_queries():
        assert promql_problems(selector) == []
        (metric,) = parse_promql_names(selector).metrics
        assert label in SERIES[metric], f"{metric} has no label {label}"


def test_dashboard_charts_every_metric_family() -> None:
    used = {m for q in _dashboard_queries() for m in parse_promql_names(q).metrics}
    charted = {
        name
        for name, family in METRICS.items()
        if (f"{name}_bucket" if family.kind == "histogram" else name) in used
    }
    assert charted == set(METRICS)


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    queries = _dashboard_queries() + [selector for selector, _ in _variable_queries()]
    rules = [{"record": f"dashboard:query_{n}", "expr": q} for n, q in enumerate(queries)]
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# --- the PromQL reader itself ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        (
            "rate(inference_gateway_cold_boot_total[5m])",
            "unknown metric inference_gateway_cold_boot_total",
        ),
        (
            "rate(inference_gateway_request_duration_seconds[5m])",
            "unknown metric inference_gateway_request_duration_seconds",
        ),
        ('grpc_server_handled_total{grpc_code="Internal"}', "grpc_code is never 'Internal'"),
        (
            'grpc_server_handled_total{grpc_code=~"OK|InvalidArgument"}',
            "grpc_code is never 'InvalidArgument'",
        ),
        (
            'inference_gateway_cold_boots_total{rpc="GenerateText"}',
            "inference_gateway_cold_boots_total has no label rpc",
        ),
        (
            "sum by (modle) (rate(inference_gateway_cold_boots_total[5m]))",
            "no metric here has label modle",
        ),
        ('inference_gateway_predictions_total{status="success"}', "status is never 'success'"),
    ],
)
def test_problems_name_what_is_wrong(expr: str, problem: str) -> None:
    assert promql_problems(expr) == [problem]


_RESERVED = _GROUPING | _KEYWORDS | _AGGREGATIONS
_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: s not in _RESERVED
)
_VALUES = st.text(max_size=8)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# A generated expression, the metrics it names and the labels it groups by.
_Case = tuple[str, frozenset[str], frozenset[str]]


@st.composite
def _selectors(draw: st.DrawFn) -> _Case:
    name = draw(_NAMES)
    matchers = draw(
        st.lists(st.tuples(_NAMES, st.sampled_from(sorted(_MATCH_OPS)), _VALUES), max_size=3)
    )
    body = [f"{label}{op}{_quote(value)}" for label, op, value in matchers]
    form = draw(st.sampled_from(["bare", "braces", "__name__"]))
    if form == "bare" and not body:
        text = name
    elif form == "__name__":
        text = "{" + ", ".join([f"__name__={_quote(name)}", *body]) + "}"
    else:
        text = name + "{" + ", ".join(body) + "}"
    if draw(st.booleans()):
        text = f"rate({text}[{draw(st.sampled_from(['5m', '1h30m', '30s']))}])"
    return text, frozenset({name}), frozenset()


_NUMBERS = st.sampled_from(["1", "0.5", "1e3", "0x1F", "Inf", "NaN"]).map(
    lambda n: (n, frozenset[str](), frozenset[str]())
)


def _draw_labels(draw: st.DrawFn) -> tuple[str, frozenset[str]]:
    labels = draw(st.lists(_NAMES, max_size=3))
    return "(" + ", ".join(labels) + ")", frozenset(labels)


@st.composite
def _combined(draw: st.DrawFn, children: st.SearchStrategy[_Case]) -> _Case:
    (left, left_names, left_groups), (right, right_names, right_groups) = (
        draw(children),
        draw(children),
    )
    shape = draw(st.sampled_from(["binary", "aggregate", "aggregate_after", "function", "group"]))
    if shape == "binary":
        op = draw(st.sampled_from(["+", "/", ">", "== bool", "and", "unless", "or"]))
        groups = left_groups | right_groups
        if draw(st.booleans()):
            (on, on_labels), (extra, extra_labels) = _draw_labels(draw), _draw_labels(draw)
            op += f" on {on} group_left {extra}"
            groups |= on_labels | extra_labels
        return f"{left} {op} {right}", left_names | right_names, groups
    if shape == "function":
        call = draw(
            st.sampled_from(["histogram_quantile(0.99, {})", "abs({})", "clamp_min({}, 0)"])
        )
        return call.format(left), left_names, left_groups
    if shape == "group":
        return f"({left})", left_names, left_groups
    aggregation = draw(st.sampled_from(["sum", "max", "count", "topk"]))
    labels, label_set = _draw_labels(draw)
    grouping = f"{draw(st.sampled_from(['by', 'without']))} {labels}"
    if shape == "aggregate":
        return f"{aggregation} {grouping} ({left})", left_names, left_groups | label_set
    return f"{aggregation}({left}) {grouping}", left_names, left_groups | label_set


_EXPRESSIONS = st.recursive(
    st.one_of(_selectors(), _NUMBERS), lambda children: _combined(children), max_leaves=6
)


@given(_EXPRESSIONS)
def test_reader_finds_exactly_the_metrics_and_grouping_labels(case: _Case) -> None:
    expr, metrics, grouping = case
    names = parse_promql_names(expr)
    assert names.metrics == metrics
    assert names.grouping_labels == grouping


@given(_NAMES, _NAMES, st.sampled_from(sorted(_MATCH_OPS)), st.text())
def test_reader_unquotes_matcher_values(name: str, label: str, op: str, value: str) -> None:
    (selector,) = parse_promql_names(f"{name}{{{label}{op}{_quote(value)}}}").selectors
    assert selector == Selector(name, (Matcher(label, op, value),))


@given(st.text(alphabet='ab_1 (){}[],="\\`#:+\n', max_size=30))
def test_reader_reads_or_rejects_any_text(text: str) -> None:
    try:
        parse_promql_names(text)
    except DeployParseError as error:
        message = str(error)
    else:
        return
    assert message.startswith("PromQL:")


@pytest.mark.parametrize(
    "text",
    ['up{job="x"', "sum(rate(up[5m])", 'up{job=~"x"', '{job="x"}', "up{job}", "rate(up[5m]))"],
)
def test_reader_rejects_broken_expressions(text: str) -> None:
    with pytest.raises(DeployParseError):
        parse_promql_names(text)
