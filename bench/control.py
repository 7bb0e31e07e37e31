"""The simulator's control routes, as the orchestrator uses them: counts, cold boots, faults."""

from __future__ import annotations

from collections import Counter

import aiohttp

__all__ = ["ControlError", "SimulatorControl"]


class ControlError(RuntimeError):
    """The simulator refused a control request; the message carries its answer."""


class SimulatorControl:
    """Reads the simulator's request log and scripts its models, over HTTP."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = f"{base_url.rstrip('/')}/_simulator"

    async def request_times(self, model: str, kind: str) -> list[float]:
        """Arrival times (epoch seconds) of `model`'s requests of endpoint `kind`."""
        async with self._session.get(
            f"{self._base}/requests", params={"model": model, "kind": kind}
        ) as response:
            body = await self._json(response)
        return [float(str(request["time"])) for request in body["requests"]]

    async def request_kinds(self, model: str) -> Counter[str]:
        """How many requests of each endpoint kind concerned `model`."""
        async with self._session.get(f"{self._base}/requests", params={"model": model}) as response:
            body = await self._json(response)
        return Counter(str(request["kind"]) for request in body["requests"])

    async def cold_boot(self, model: str, seconds: float) -> None:
        """The next prediction of `model` waits `seconds` in `starting`, as after a cold boot."""
        async with self._session.post(
            f"{self._base}/models/{model}/cold-boot", json={"seconds": seconds}
        ) as response:
            if response.status != 204:
                raise ControlError(f"cold boot of {model} refused: {await response.text()}")

    async def patch_behaviour(self, model: str, changes: dict[str, object]) -> None:
        """Changes how `model` acts from its next prediction on (e.g. where its files live)."""
        async with self._session.patch(
            f"{self._base}/models/{model}/behaviour", json=changes
        ) as response:
            await self._json(response)

    async def add_fault(self, fault: dict[str, object]) -> int:
        """Arms a fault (the simulator's `Fault` fields); returns its id."""
        async with self._session.post(f"{self._base}/faults", json=fault) as response:
            if response.status != 201:
                raise ControlError(f"fault {fault} refused: {await response.text()}")
            body: dict[str, object] = await response.json()
        return int(str(body["id"]))

    async def fault(self, fault_id: int) -> dict[str, object]:
        """A fault still armed, with what it did so far (`fired`, `endless_line_bytes`)."""
        async with self._session.get(f"{self._base}/faults") as response:
            body = await self._json(response)
        for fault in body["faults"]:
            if fault["id"] == fault_id:
                return fault
        raise ControlError(f"fault {fault_id} is no longer armed")

    async def clear_faults(self) -> None:
        async with self._session.delete(f"{self._base}/faults") as response:
            if response.status != 204:
                raise ControlError(f"faults not cleared: {await response.text()}")

    @staticmethod
    async def _json(response: aiohttp.ClientResponse) -> dict[str, list[dict[str, object]]]:
        if response.status != 200:
            raise ControlError(
                f"the simulator answered HTTP {response.status}: {await response.text()}"
            )
        body: dict[str, list[dict[str, object]]] = await response.json()
        return body
