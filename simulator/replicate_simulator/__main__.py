"""`replicate-simulator` (or `python -m replicate_simulator`): serve the simulator."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from replicate_simulator import add_simulate_arguments, config_from_args, run_simulator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="replicate-simulator",
        description="Serve a local simulator of Replicate's HTTP API.",
    )
    add_simulate_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_simulator(config_from_args(args), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
