"""Suite-wide rules: timeouts per tier, and no per-example deadlines from hypothesis.

`make test` runs the fast tier (`-m "not slow"`) and then the slow one (`-m slow`);
pyproject.toml sets the default timeout every other test gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.redis_fixtures import RedisServer, redis_server

SLOW_TEST_TIMEOUT_S = 600
"""A slow test's own `@pytest.mark.timeout(...)`, when it has one, wins over this."""

# Hypothesis fails an example that takes over 200 ms: a timing assertion that a loaded
# 2-core machine breaks now and then. The per-test timeout bounds a hang instead.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own on a loopback port (tests/redis_fixtures.py)."""
    with redis_server(tmp_path) as server:
        yield server
