"""Where the benchmarks find the project, and the environment of the processes they start.

Each benchmark script runs as ``python bench/<name>.py``, which puts ``bench/`` on
``sys.path``; importing this module puts the project root there too. Started processes get
both on ``PYTHONPATH`` and never reach a model hub.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for _path in (str(ROOT), str(BENCH_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def process_env() -> dict[str, str]:
    """The environment for the processes a benchmark starts."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), str(BENCH_DIR), os.environ.get("PYTHONPATH")])
        ),
    }
