"""The README's reference tables name what the code has: every metric, every alias key."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from inference_gateway.config._native import _ALIAS_KEYS
from inference_gateway.metrics import Metrics

REPO = Path(__file__).resolve().parent.parent


def _section(title: str) -> str:
    return (REPO / "README.md").read_text().split(f"\n## {title}\n")[1].split("\n## ")[0]


def _readme_rows() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Metric name -> (type, label names), as the README's Metrics table writes them."""
    section = _section("Metrics")
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        name, kind, labels, _ = (cell.strip() for cell in line.strip("|").split("|", 3))
        names = tuple(label.strip(" `") for label in labels.split(",") if label.strip())
        rows[name.strip("`")] = (kind, names)
    return rows


def _exported() -> dict[str, tuple[str, tuple[str, ...]]]:
    metrics = Metrics()
    exported: dict[str, tuple[str, tuple[str, ...]]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            name = metric._name + ("_total" if metric._type == "counter" else "")
            exported[name] = (str(metric._type), tuple(metric._labelnames))
    return exported


def test_the_readme_metrics_table_matches_what_the_gateway_exports() -> None:
    exported = _exported()
    assert "inference_gateway_request_duration_seconds" in exported  # found at all
    assert _readme_rows() == exported


def test_the_readme_names_every_alias_key_the_configuration_accepts() -> None:
    rows = [line for line in _section("Configuration file").splitlines() if line.startswith("| `")]
    documented = {key for row in rows for key in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert "model" in _ALIAS_KEYS  # the loader's list, found at all
    assert documented == set(_ALIAS_KEYS)
