"""Building a distribution of this repository as pip would, to read what its wheel holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def build_wheel(project: Path, out: Path, distribution: str) -> Path:
    """`project`'s wheel, built into `out` without fetching anything."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--no-build-isolation", "--wheel-dir", str(out), str(project),
        ],
        cwd=out,
        check=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob(f"{distribution}-*.whl")
    return wheel
