"""The simulator removes a prediction's data a configured (simulated) time after it ends."""

from __future__ import annotations

import argparse

import httpx

from replicate_simulator import SimulatorConfig
from replicate_simulator._cli import add_simulate_arguments, config_from_args
from tests.simulator_fixtures import auth_headers, running_simulator, wait_until
from tests.support.models import SDXL, SDXL_VERSION


async def test_outputs_and_files_go_after_the_retention_in_simulated_time() -> None:
    # 600 simulated seconds of retention last 0.1 s at this scale.
    config = SimulatorConfig(time_scale=6000.0, output_retention_seconds=600.0)
    async with (
        running_simulator(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=auth_headers()) as http,
    ):
        created = await http.post(
            "/v1/predictions", json={"version": SDXL_VERSION, "input": {"prompt": "a fox"}}
        )
        assert created.status_code == 201
        prediction = sim.state.predictions[created.json()["id"]]
        await wait_until(prediction, lambda p: p.is_terminal)
        ended = (await http.get(f"/v1/predictions/{prediction.id}")).json()
        assert ended["data_removed"] is False
        (file_url,) = ended["output"]
        assert (await http.get(file_url)).status_code == 200

        await wait_until(prediction, lambda p: p.data_removed)
        removed = (await http.get(f"/v1/predictions/{prediction.id}")).json()
        assert removed["data_removed"] is True
        assert removed["output"] is None
        assert removed["input"] == {}
        assert removed["status"] == "succeeded"
        assert (await http.get(file_url)).status_code == 404
        assert sim.state.predictions[prediction.id].model.full_name == SDXL


def test_the_flag_sets_the_retention() -> None:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    config = config_from_args(parser.parse_args(["--output-retention", "3600"]))
    assert config.output_retention_seconds == 3600.0
    assert config_from_args(parser.parse_args([])).output_retention_seconds is None
