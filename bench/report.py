"""The results table: each figure next to its baseline, their ratio, and the target.

The table carries the machine it ran on (cores, CPU, Python and package versions),
because a ratio measured on two cores says little about eight.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import ratio

__all__ = [
    "Environment",
    "Figure",
    "ReportError",
    "Row",
    "cpu_ticks",
    "environment",
    "render_markdown",
    "steal_percent",
]

PACKAGES = (
    "inference-gateway",
    "grpcio",
    "protobuf",
    "httpx",
    "httpcore",
    "anyio",
    "sniffio",
    "aiohttp",
    "uvloop",
    "prometheus-client",
    "replicate",
)
_UNITS = {
    "ms": "{:.2f} ms",
    "s": "{:.3f} s",
    "req/s": "{:,.0f} req/s",
    "requests": "{:g}",
    "calls": "{:,.0f}",
    "entries": "{:,.0f}",
    "KB": "{:.1f} KB",
    "x": "{:.2f}",
    "us": "{:,.0f} µs",
    "MiB": "{:,.0f} MiB",
    "yes/no": "",
}


class ReportError(ValueError):
    """A row that cannot be shown: its unit is not one the table knows how to write."""


@dataclass(frozen=True)
class Row:
    """One measured quantity, beside the same quantity for the baseline."""

    metric: str
    measured: float
    baseline: float
    unit: str
    target: str
    met: bool | None
    """None where the row informs rather than tests a target."""
    detail: str = ""
    peer: float | None = None
    """LiteLLM's figure, in rows measured beside it (nan where it could not be measured)."""
    peer_detail: str = ""
    """How LiteLLM did: what failed, and how."""

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise ReportError(f"unit must be one of {', '.join(_UNITS)}, got {self.unit!r}")

    @property
    def ratio(self) -> float | None:
        return ratio(self.measured, self.baseline)


@dataclass(frozen=True)
class Figure:
    number: int
    title: str
    baseline: str
    """What the baseline is, in a few words."""
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    failed: str | None = None
    """Why the figure could not be measured, when it could not."""


@dataclass(frozen=True)
class Environment:
    date: str
    cores: int
    usable_cores: int
    cpu: str
    python: str
    system: str
    packages: dict[str, str] = field(default_factory=dict)
    commit: str = "unknown"
    load_average: str = "unknown"
    """The 1, 5 and 15 minute load averages when the run began."""
    steal_percent: float | None = None
    """CPU time the hypervisor gave to other guests during the run: noise to know about."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_ticks() -> tuple[int, int]:
    """(stolen, total) CPU ticks of the whole machine so far; zeros where /proc/stat is absent."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return (0, 0)
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    ticks = [int(value) for value in first[1:9]]
    return (ticks[7] if len(ticks) > 7 else 0, sum(ticks))


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else None


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head} (with uncommitted changes)" if head and dirty else head or "unknown"


def environment(root: Path) -> Environment:
    return Environment(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        cpu=_cpu_model(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
        packages={name: _version(name) for name in PACKAGES},
        commit=_commit(root),
        load_average=_load_average(),
    )


def _value(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "n/a"
    if unit == "yes/no":
        return "yes" if value else "**no**"
    return _UNITS[unit].format(value)


def _ratio(measured: float, baseline: float, unit: str) -> str:
    found = None if unit == "yes/no" else ratio(measured, baseline)
    return "—" if found is None else f"{found:,.2f}x"


def _said(who: str, what: str) -> str:
    return f"{who}: {what}" if what else ""


def _peer_table(figures: Sequence[Figure]) -> list[str]:
    """Gateway, LiteLLM and direct side by side, for the rows measured beside LiteLLM."""
    rows = [
        (figure, row)
        for figure in figures
        if figure.failed is None
        for row in figure.rows
        if row.peer is not None
    ]
    if not rows:
        return []
    lines = [
        "",
        "## Beside LiteLLM",
        "",
        "| Metric | Gateway | LiteLLM | Direct | LiteLLM ÷ gateway | Gateway ÷ direct | Notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, row in rows:
        assert row.peer is not None
        said = (_said("gateway", row.detail), _said("LiteLLM", row.peer_detail))
        lines.append(
            f"| {row.metric} | {_value(row.measured, row.unit)} | {_value(row.peer, row.unit)} "
            f"| {_value(row.baseline, row.unit)} | {_ratio(row.peer, row.measured, row.unit)} "
            f"| {_ratio(row.measured, row.baseline, row.unit)} "
            f"| {'; '.join(filter(None, said))} |"
        )
    return lines


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def render_markdown(
    env: Environment, figures: Sequence[Figure], *, plan: str, command: str, seconds: float
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"`{command}` ({plan} plan) on {env.date}, in {seconds / 60:.1f} minutes.",
        "",
        f"- Machine: {env.cores} cores ({env.usable_cores} usable), {env.cpu}, {env.system}",
        f"- Python {env.python}; "
        + ", ".join(f"{name} {version}" for name, version in env.packages.items()),
        f"- Commit: {env.commit}",
        f"- Load average when the run began: {env.load_average}; CPU time stolen by the "
        "hypervisor during the run: "
        + ("unknown" if env.steal_percent is None else f"{env.steal_percent:.1f} %"),
        "",
        "Every figure is measured beside its baseline in the same run, on the same cores: "
        "the ratio is what carries over to other machines, not the absolute numbers.",
        "",
        "| # | Figure | Metric | Gateway | Baseline | Ratio | Target | Met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figure in figures:
        if figure.failed is not None:
            lines.append(f"| {figure.number} | {figure.title} | not measured | | | | | **no** |")
            continue
        if any(row.peer is not None for row in figure.rows):
            lines.append(f"| {figure.number} | {figure.title} | see below | | | | | |")
            continue
        for row in figure.rows:
            shown = "—" if row.ratio is None else f"{row.ratio:.2f}x"
            target = f"{row.target} ({row.detail})" if row.detail else row.target
            lines.append(
                f"| {figure.number} | {figure.title} | {row.metric} "
                f"| {_value(row.measured, row.unit)} | {_value(row.baseline, row.unit)} "
                f"| {shown} | {target} | {_verdict(row.met)} |"
            )
    lines += _peer_table(figures)
    lines += ["", "## Baselines and notes", ""]
    for figure in figures:
        lines.append(f"**{figure.number}. {figure.title}.** Baseline: {figure.baseline}.")
        if figure.failed is not None:
            lines.append(f"- Not measured: {figure.failed}")
        lines += [f"- {note}" for note in figure.notes]
        lines.append("")
    return "\n".join(lines)
