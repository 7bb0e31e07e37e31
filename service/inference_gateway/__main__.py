"""`python -m inference_gateway` runs the command-line interface."""

import sys

from inference_gateway.cli import main

sys.exit(main())
