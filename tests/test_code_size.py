"""The house's size limits (shared/STYLE.md): no module over 400 lines, no function over 60.

Migrations are exempt: they are generated once and never edited. A module or function that
grows past a limit is a sign to split it by concern, not to raise the limit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "schemas", "tasks", "workers", "infra", "cli", "bench", "tests", "examples")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def project_modules() -> Iterator[Path]:
    """Every Python file of the project's packages, migrations left out."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.relative_to(ROOT).parts:
                yield path


def long_functions(source: str, limit: int) -> list[tuple[str, int, int]]:
    """(name, first line, length) of each function or method longer than ``limit`` lines."""
    return [
        (node.name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > limit
    ]


def test_no_module_is_over_400_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in project_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"split these modules by concern: {too_long}"


def test_no_function_is_over_60_lines() -> None:
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for path in project_modules()
        for name, line, length in long_functions(path.read_text(), MAX_FUNCTION_LINES)
    ]
    assert not too_long, f"split these functions: {too_long}"


def test_the_function_measure_counts_a_whole_body() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    assert long_functions(f"def long():\n{body}\n\ndef short():\n    pass\n", 60) == [("long", 1, 62)]
