"""The scrape as Prometheus's own tools read it: promtool's linter and a real server.

Both tools come from Debian's `prometheus` package (deploy/install-tools.sh). A missing
tool fails its test with the command that installs it: a check that skips is a check
nobody runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3
from tests.support.prometheus import JOB, prometheus_scraping, tool
from tests.support.traffic import traffic_of_every_kind

# The slow tier: a real Prometheus server and promtool.
pytestmark = pytest.mark.slow


async def metrics_text(h: Harness) -> str:
    """The scrape in the text format promtool reads (the default without an Accept header)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{h.gateway.metrics_port}/metrics")
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.mark.timeout(60)
async def test_promtool_finds_nothing_to_lint_after_traffic_of_every_kind() -> None:
    promtool = tool("promtool")
    async with running_gateway(serve_metrics=True) as h:
        await traffic_of_every_kind(h)
        text = await metrics_text(h)
    # prometheus_client adds a `_created` gauge per counter and histogram: checked too.
    assert "\ninference_gateway_predictions_created{" in text
    checked = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(checked.communicate(text.encode()), timeout=30)
    assert (checked.returncode, output.decode()) == (0, "")


@pytest.mark.timeout(40)
async def test_a_real_prometheus_scrapes_the_cold_boot_counter(tmp_path: Path) -> None:
    async with running_gateway(serve_metrics=True) as h:
        # One warm prediction, then two whose queue is reported as 45 s (past the 15 s default).
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="warm"), timeout=20)
        h.simulator.state.set_behaviour(LLAMA3, backdate_seconds=45)
        for _ in range(2):
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="c"), timeout=20)
        async with (
            prometheus_scraping(h.gateway.metrics_port, tmp_path) as prometheus,
            httpx.AsyncClient(timeout=5) as client,
        ):
            await prometheus.get(client, "/-/ready")
            mine = f'job="{JOB}", model="{LLAMA3}"'
            cold_boots = await prometheus.value_once_scraped(
                client, f"inference_gateway_cold_boots_total{{{mine}}}"
            )
            succeeded = await prometheus.value_once_scraped(
                client, f'inference_gateway_predictions_total{{{mine}, status="succeeded"}}'
            )
            up = await prometheus.value_once_scraped(client, f'up{{job="{JOB}"}}')
    assert cold_boots == 2
    assert succeeded == 3
    assert up == 1
