"""The simulator's time scale: minute-long scenarios in seconds, reported in simulated time.

Each test runs a scenario whose simulated length is known, measures its real length
with the test's own clock, and reads the simulated length from what the API reports
(timestamps, metrics, headers). Bounds on real time are generous (a loaded 2-core
machine); the simulated figures must match what was asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replicate_simulator import (
    ConfigError,
    RunningSimulator,
    SimulatorConfig,
    add_simulate_arguments,
    config_from_args,
)
from replicate_simulator._clock import SimClock
from tests.simulator_fixtures import auth_headers, running_simulator
from tests.support.models import LLAMA3

SCALE = 60.0
# Far below the unscaled length of every scenario here, far above its scaled length.
REAL_LIMIT_S = 20.0


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(time_scale=SCALE, token_interval_seconds=0.0)
    async with running_simulator(config) as running:
        yield running


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as client:
        yield client


async def run_to_the_end(
    sim: RunningSimulator, http: httpx.AsyncClient, **headers: str
) -> tuple[dict[str, Any], float]:
    """Create a Llama 3 prediction, wait until it ends; its final body and the real seconds."""
    started = time.monotonic()
    created = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers=headers
    )
    assert created.status_code == 201, created.text
    prediction = sim.state.predictions[created.json()["id"]]
    async with asyncio.timeout(REAL_LIMIT_S):
        while not prediction.is_terminal:
            await prediction.wait_for_change()
    elapsed = time.monotonic() - started
    return (await http.get(f"/v1/predictions/{prediction.id}")).json(), elapsed


async def test_a_scaled_60_second_boot_reports_60_seconds_of_queue_in_a_second(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.force_cold_boot(LLAMA3, 60.0)
    sim.state.set_behaviour(LLAMA3, predict_seconds=30.0)

    body, elapsed = await run_to_the_end(sim, http)

    queue = seconds_between(body["created_at"], body["started_at"])
    assert body["status"] == "succeeded"
    assert queue >= 60.0
    assert body["metrics"]["predict_time"] >= 30.0
    # The simulated 90 s took 1.5 s of real time, not 90 s...
    assert 90.0 / SCALE * 0.95 <= elapsed < REAL_LIMIT_S
    # ...and the simulated figures are the real ones times the scale, not padded.
    assert queue + body["metrics"]["predict_time"] <= elapsed * SCALE + 1.0


async def test_a_scaled_token_pace_reports_the_simulated_predict_time(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, output_tokens=30, token_interval_seconds=2.0)

    body, elapsed = await run_to_the_end(sim, http)

    assert body["metrics"]["output_token_count"] == 30
    assert 60.0 <= body["metrics"]["predict_time"] <= elapsed * SCALE + 1.0
    assert 60.0 / SCALE * 0.95 <= elapsed < REAL_LIMIT_S


async def test_a_model_idle_past_the_scaled_idle_time_boots_cold() -> None:
    # 300 s of idleness at scale 1000 is 0.3 s; the 90 s boot is 0.09 s.
    config = SimulatorConfig(
        time_scale=1000.0,
        token_interval_seconds=0.0,
        cold_boot_idle_seconds=300.0,
        cold_boot_seconds=90.0,
    )
    async with (
        running_simulator(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http,
    ):
        # Only the passage of time makes a model idle: no event to await.
        await asyncio.sleep(0.4)
        cold, _ = await run_to_the_end(sim, http)
        warm, _ = await run_to_the_end(sim, http)

    assert seconds_between(cold["created_at"], cold["started_at"]) >= 90.0
    assert seconds_between(warm["created_at"], warm["started_at"]) < 90.0


async def test_a_scaled_prefer_wait_holds_a_simulated_minute(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True)

    started = time.monotonic()
    response = await http.post(
        f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait=60"}
    )
    elapsed = time.monotonic() - started

    assert response.headers["Preference-Applied"] == "wait=60"
    assert response.json()["status"] == "starting"
    assert 60.0 / SCALE * 0.95 <= elapsed < REAL_LIMIT_S
    sim.state.cancel(sim.state.predictions[response.json()["id"]])


async def test_a_scaled_cancel_after_aborts_on_the_simulated_deadline(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    sim.state.set_behaviour(LLAMA3, never_finishes=True)

    body, elapsed = await run_to_the_end(sim, http, **{"Cancel-After": "1m30s"})

    assert body["status"] == "canceled"
    assert 89.9 < seconds_between(body["created_at"], body["deadline"]) < 90.1
    assert seconds_between(body["created_at"], body["completed_at"]) >= 90.0
    assert 90.0 / SCALE * 0.95 <= elapsed < REAL_LIMIT_S


async def test_a_scaled_rate_window_refills_in_real_seconds_and_says_so() -> None:
    # Two creates a simulated minute: one more every 30 simulated seconds, 0.5 s real.
    config = SimulatorConfig(time_scale=SCALE, token_interval_seconds=0.0, create_rate_per_minute=2)
    async with (
        running_simulator(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http,
    ):
        create = f"/v1/models/{LLAMA3}/predictions"
        answers = [await http.post(create, json={"input": {}}) for _ in range(3)]
        refused = answers[-1]
        # A client waits what it was told, in its own time (a budget refills with time alone).
        await asyncio.sleep(refused.json()["retry_after"])
        after_the_wait = await http.post(create, json={"input": {}})

    assert [a.status_code for a in answers] == [201, 201, 429]
    # Unscaled, the wait would be 30 s: reported as the real seconds a client must wait.
    assert refused.json()["retry_after"] == 1
    assert refused.headers["ratelimit-reset"] == "1"
    assert after_the_wait.status_code == 201


async def test_the_time_scale_changes_over_the_control_route_and_resets(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/_simulator/time-scale")).json() == {"time_scale": SCALE}

    changed = await http.put("/_simulator/time-scale", json={"time_scale": 1.0})
    assert changed.json() == {"time_scale": 1.0}
    sim.state.set_behaviour(LLAMA3, never_finishes=True)
    started = time.monotonic()
    body = (
        await http.post(
            f"/v1/models/{LLAMA3}/predictions", json={"input": {}}, headers={"Prefer": "wait=1"}
        )
    ).json()
    assert time.monotonic() - started >= 0.95  # a real second: no longer scaled by 60
    assert body["status"] == "starting"
    sim.state.cancel(sim.state.predictions[body["id"]])

    await http.post("/_simulator/reset")
    assert (await http.get("/_simulator/time-scale")).json() == {"time_scale": SCALE}


@pytest.mark.parametrize(
    "body", [{"time_scale": 0}, {"time_scale": -2}, {"time_scale": "fast"}, {}]
)
async def test_a_bad_time_scale_over_the_control_route_is_a_400_saying_what_to_give(
    http: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await http.put("/_simulator/time-scale", json=body)

    assert response.status_code == 400
    assert "time_scale" in response.json()["detail"]
    assert (await http.get("/_simulator/time-scale")).json() == {"time_scale": SCALE}


def test_the_time_scale_comes_from_a_config_file_and_a_flag(tmp_path: Path) -> None:
    config_file = tmp_path / "sim.yaml"
    config_file.write_text("time_scale: 10\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)

    assert SimulatorConfig.from_file(config_file).time_scale == 10.0
    assert config_from_args(parser.parse_args(["--config", str(config_file)])).time_scale == 10.0
    flagged = parser.parse_args(["--config", str(config_file), "--time-scale", "120"])
    assert config_from_args(flagged).time_scale == 120.0
    assert "--time-scale" in parser.format_help()


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_time_scale_is_any_finite_number_above_zero(scale: float) -> None:
    if math.isfinite(scale) and scale > 0:
        assert SimulatorConfig(time_scale=scale).time_scale == scale
    else:
        with pytest.raises(ConfigError, match="time_scale must be"):
            SimulatorConfig(time_scale=scale)


def test_a_change_of_scale_never_makes_the_clock_jump() -> None:
    real = [100.0]
    clock = SimClock(10.0, wall=lambda: 5000.0, monotonic=lambda: real[0])
    real[0] = 101.0
    assert clock.monotonic() == 110.0
    assert clock.now() == 5010.0

    clock.scale = 2.0
    assert clock.monotonic() == 110.0
    real[0] = 102.0
    assert clock.monotonic() == 112.0
    assert clock.real(30.0) == 15.0
    assert clock.real_whole_seconds(0.5) == 1
    assert clock.real_whole_seconds(5.0) == 3
