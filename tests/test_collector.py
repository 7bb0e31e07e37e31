"""The garbage collector's setup once the gateway serves (grpc_api/server.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from inference_gateway.settings import Settings

_PROBE = """
import gc, json
from inference_gateway.grpc_api.server import _tune_collector
before = gc.get_threshold()
_tune_collector({threshold})
print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count(), gc.get_count()[0]]))
"""


def test_serving_freezes_start_up_and_spaces_young_collections() -> None:
    # Its own interpreter: freezing is for the whole process, and no test may keep it.
    threshold = Settings().gc_threshold
    probe = _PROBE.format(threshold=threshold)
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    before, after, frozen, young = json.loads(out)
    assert after == [threshold, before[1], before[2]]
    assert threshold > before[0]
    # What start-up built is out of every collection's reach.
    assert frozen > 10_000
    assert young < 100
