"""Polling a prediction that outlived its held create: no faster than the backoff has reached.

A create held for the whole sync wait has already been followed for that long; polling
from the start of the backoff would spend a dozen GETs in its first few seconds.
"""

from __future__ import annotations

import itertools

from inference_gateway.deadlines import Deadline
from inference_gateway.grpc_api.server import client_settings
from inference_gateway.predictions import PredictionRunner, RunnerSettings
from inference_gateway.replicate import ReplicateClient
from inference_gateway.settings import Settings
from replicate_simulator import SimulatorConfig, start_simulator
from tests.support.models import LLAMA3

# Time-scaled: a 1 s sync wait, polls backing off from 50 ms to 200 ms by 1.5x.
SETTINGS = RunnerSettings(max_wait_seconds=1, poll_initial=0.05, poll_factor=1.5, poll_max=0.2)


async def test_polls_after_a_held_create_start_at_the_pace_the_backoff_reached() -> None:
    simulator = await start_simulator(SimulatorConfig(), "127.0.0.1", 0)
    client = ReplicateClient(client_settings(Settings(base_url=simulator.base_url)))
    try:
        simulator.state.set_behaviour(LLAMA3, streams=False, predict_seconds=2.0)
        prediction = await PredictionRunner(client, SETTINGS).run(
            f"/v1/models/{LLAMA3}/predictions",
            {"input": {"prompt": "slow"}},
            token="r8_test",
            deadline=Deadline.after(30),
        )
    finally:
        await client.aclose()
        await simulator.stop()
    assert prediction.status == "succeeded"
    [create] = simulator.state.requests.matching("create")
    gets = [request.time for request in simulator.state.requests.matching("get")]
    # After a 1 s hold the backoff stands at 0.05 + 1 x 0.5 s, capped at 0.2 s: every
    # GET, the first included, comes at least that long after the one before.
    answered = create.time + SETTINGS.max_wait_seconds
    gaps = [later - earlier for earlier, later in itertools.pairwise([answered, *gets])]
    assert gaps
    assert min(gaps) >= SETTINGS.poll_max - 0.02
