"""`make bench`: run every figure, print the table, write it to bench/results/latest.md.

Figure 3's long predictions (a cold boot past the sync wait, a 200 s run) take real
time but almost no CPU, so they run in the background, in processes of their own,
while the other figures are measured.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bench import (
    fig_concurrency,
    fig_latency,
    fig_peer,
    fig_resources,
    fig_shared_state,
    fig_startup,
    fig_streaming,
    fig_throughput,
    fig_upstream,
)
from bench.lab import REPO_ROOT, Lab, raise_fd_limit
from bench.plan import FULL, SMOKE, Plan
from bench.report import Figure, cpu_ticks, environment, render_markdown, steal_percent

__all__ = ["main", "run_suite"]

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "latest.md"
_IN_TURN = (
    fig_startup,
    fig_latency,
    fig_streaming,
    fig_throughput,
    fig_concurrency,
    fig_shared_state,
    fig_resources,
)
"""Measured one after another, while figure 3's long predictions run in the background."""
Log = Callable[[str], None]


async def _guarded(number: int, title: str, measuring: Awaitable[Figure], log: Log) -> Figure:
    """A figure that could not be measured is reported as such; the others still are."""
    try:
        figure = await measuring
    except Exception as exc:
        log(f"figure {number} failed: {type(exc).__name__}: {exc}")
        return Figure(number, title, "", (), failed=f"{type(exc).__name__}: {exc}")
    log(f"figure {number} done")
    return figure


async def run_suite(
    plan: Plan,
    workdir: Path,
    log: Log,
    *,
    tracing: bool = False,
    litellm: Path | None = None,
    only: int | None = None,
) -> list[Figure]:
    """Measures every figure (or only figure `only`) with `plan`'s sizes; processes and
    logs live in `workdir`.

    With `tracing`, every gateway exports every call's spans to an OTLP receiver on
    loopback, so the figures show what tracing costs. `litellm` is LiteLLM's `litellm`
    program; without it figure 8 measures the gateway alone.
    """
    raise_fd_limit()
    lab = Lab(workdir, tracing=tracing)
    if only is not None:
        return [await _alone(only, lab, plan, litellm, log)]
    issued = asyncio.Event()
    log(f"figure {fig_upstream.NUMBER} ({fig_upstream.TITLE}) starts in the background")
    upstream = asyncio.ensure_future(
        _guarded(
            fig_upstream.NUMBER, fig_upstream.TITLE, fig_upstream.measure(lab, plan, issued), log
        )
    )
    started = asyncio.ensure_future(issued.wait())
    await asyncio.wait({upstream, started}, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    figures = []
    for module in _IN_TURN:
        log(f"figure {module.NUMBER}: {module.TITLE}")
        figures.append(await _guarded(module.NUMBER, module.TITLE, module.measure(lab, plan), log))
    log(f"figure {fig_peer.NUMBER}: {fig_peer.TITLE}")
    figures.append(
        await _guarded(fig_peer.NUMBER, fig_peer.TITLE, fig_peer.measure(lab, plan, litellm), log)
    )
    if not upstream.done():
        log(f"waiting for figure {fig_upstream.NUMBER}'s long predictions")
    figures.append(await upstream)
    return sorted(figures, key=lambda figure: figure.number)


async def _alone(number: int, lab: Lab, plan: Plan, litellm: Path | None, log: Log) -> Figure:
    """Figure `number` by itself (figure 3's long predictions in the foreground)."""
    measuring: dict[int, Callable[[], Awaitable[Figure]]] = {
        module.NUMBER: functools.partial(module.measure, lab, plan) for module in _IN_TURN
    }
    measuring[fig_upstream.NUMBER] = lambda: fig_upstream.measure(lab, plan, asyncio.Event())
    measuring[fig_peer.NUMBER] = lambda: fig_peer.measure(lab, plan, litellm)
    if number not in measuring:
        raise ValueError(f"there is no figure {number}; they are {sorted(measuring)}")
    log(f"figure {number} alone")
    return await _guarded(number, f"figure {number}", measuring[number](), log)


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: proves the harness, measures nothing"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where the table goes (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; with "
        "--figure, a file in the temporary directory)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="gateways trace every call, exported over OTLP/gRPC to a receiver on loopback",
    )
    parser.add_argument(
        "--litellm",
        type=Path,
        help="LiteLLM's `litellm` program (make bench installs it in bench/.litellm-venv); "
        "without it figure 8 measures the gateway alone",
    )
    parser.add_argument(
        "--figure",
        type=int,
        metavar="N",
        help="measure figure N alone (to rerun one figure; the full run is the reference)",
    )
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    workdir = Path(tempfile.mkdtemp(prefix="inference-gateway-bench-"))
    env = environment(REPO_ROOT)
    ticks = cpu_ticks()
    started = time.monotonic()
    figures = asyncio.run(
        run_suite(plan, workdir, _log, tracing=args.tracing, litellm=args.litellm, only=args.figure)
    )
    command = "python -m bench.run --smoke" if args.smoke else "make bench"
    if args.tracing:
        command += " (--tracing)"
    if args.figure is not None:
        command += f" (--figure {args.figure})"
    table = render_markdown(
        dataclasses.replace(env, steal_percent=steal_percent(ticks, cpu_ticks())),
        figures,
        plan=plan.name,
        command=command,
        seconds=time.monotonic() - started,
    )
    print(table)
    output = args.output or (
        DEFAULT_OUTPUT
        if args.figure is None
        else Path(tempfile.gettempdir()) / f"inference-gateway-bench-figure-{args.figure}.md"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(table + "\n")
    _log(f"wrote {output}")
    if any(figure.failed for figure in figures):
        _log(f"some figures failed; the processes' logs are in {workdir}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
