"""A real Prometheus server (Debian's package, deploy/install-tools.sh) for the tests.

A missing tool fails its test with the command that installs it: a check that skips is a
check nobody runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

INSTALL_HINT = "run deploy/install-tools.sh (see deploy/README.md)"
JOB = "inference-gateway"  # the job label deploy/prometheus/alerts.yaml selects
# Long enough for a cold start of Prometheus on a loaded machine, short of the test's limit.
PROMETHEUS_PATIENCE_S = 15.0


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prometheus:
    base_url: str
    process: asyncio.subprocess.Process
    log: Path

    def check_running(self) -> None:
        if self.process.returncode is not None:
            pytest.fail(
                f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()}"
            )

    async def get(self, client: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
        """GETs `path` until it answers 200: Prometheus may still be starting."""
        async with asyncio.timeout(PROMETHEUS_PATIENCE_S):
            while True:
                self.check_running()
                with contextlib.suppress(httpx.TransportError):  # not listening yet
                    response = await client.get(self.base_url + path, params=params)
                    if response.status_code == 200:
                        return response
                await asyncio.sleep(0.1)

    async def value_once_scraped(self, client: httpx.AsyncClient, promql: str) -> float:
        """The instant value of `promql`, polled until a scrape has put a series there."""
        async with asyncio.timeout(PROMETHEUS_PATIENCE_S):
            while True:
                response = await self.get(client, "/api/v1/query", query=promql)
                result = response.json()["data"]["result"]
                if result:
                    [series] = result
                    return float(series["value"][1])
                await asyncio.sleep(0.2)


@asynccontextmanager
async def prometheus_scraping(
    target_port: int, tmp_path: Path, *, features: tuple[str, ...] = ()
) -> AsyncIterator[Prometheus]:
    """Prometheus on loopback scraping the target every second; killed on the way out.

    `features` are passed as --enable-feature (exemplar-storage, for one).
    """
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("w") as output:
        process = await asyncio.create_subprocess_exec(
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *(f"--enable-feature={feature}" for feature in features),
            stdout=output,
            stderr=output,
        )
    try:
        yield Prometheus(f"http://127.0.0.1:{port}", process, log)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
