"""``bench/cost.py --quick``: the whole benchmark on 100 requests, with real processes.

It checks that the benchmark runs end to end (stack, both replays, the cache check, the
budget scenario) and that its closing line is the issue's, with figures that make sense: the
naive side costs something, every submitted job succeeded, and the caches answered some.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
END_LINE = re.compile(
    r"^cost_reduction=(?P<reduction>-?[\d.]+) cost_per_1k_naive=(?P<naive>[\d.]+) "
    r"cost_per_1k_switchyard=(?P<ours>[\d.]+) wrong_cache_answers=(?P<wrong>[\d.]+) "
    r"budget_overspend_calls=(?P<overspend>\d+|unmeasured)$"
)


@pytest.mark.e2e
def test_the_quick_cost_benchmark_ends_with_the_issues_line(redis_url: str) -> None:
    command = [sys.executable, "bench/cost.py", "--quick", "--workers", "2", "--redis-url", redis_url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    found = END_LINE.match(lines[-1])
    assert found, lines[-1]
    naive, ours = float(found["naive"]), float(found["ours"])
    assert naive > 0
    assert 0 < ours < naive  # the caches, the small model and the lane each cut some cost
    assert abs(float(found["reduction"]) - (1 - ours / naive)) < 0.002
    assert 0 <= float(found["wrong"]) <= 1
    assert re.search(r"refused:\s+0;", done.stdout), done.stdout
    states = re.search(r"job states:\s+(\{.*?\})", done.stdout, re.DOTALL)
    assert states, done.stdout
    assert set(ast.literal_eval(states[1])) == {"succeeded"}, states[1]  # shadow checks included
    assert "exact cache hit" in done.stdout
