"""Suite-wide rules: slow tests get a longer per-test timeout than the fast tier's default.

`make test` runs the fast tier (`-m "not slow"`) and then the slow one (`-m slow`);
pyproject.toml sets the default timeout every other test gets.
"""

from __future__ import annotations

import pytest

SLOW_TEST_TIMEOUT_S = 600
"""A slow test's own `@pytest.mark.timeout(...)`, when it has one, wins over this."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))
