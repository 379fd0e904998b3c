"""requirements.lock pins every dependency that pyproject.toml names, inside its range.

A dependency added to pyproject.toml without `make lock` would install unpinned, at whatever
version the registry serves that day: this fails first.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def locked_versions(text: str) -> dict[str, Version]:
    """``name==version`` lines of a pip-compile output, by canonical name."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = Version(version.strip())
    return pins


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(spec) for spec in specs]


LOCK = locked_versions((ROOT / "requirements.lock").read_text())


@pytest.mark.parametrize("requirement", declared_requirements(), ids=lambda requirement: requirement.name)
def test_every_declared_dependency_is_locked_inside_its_range(requirement: Requirement) -> None:
    pinned = LOCK.get(canonicalize_name(requirement.name))
    assert pinned is not None, f"{requirement.name} is not in requirements.lock: run `make lock UPGRADE=0`"
    assert requirement.specifier.contains(pinned, prereleases=True), (
        f"requirements.lock pins {requirement.name}=={pinned}, outside {requirement.specifier}: "
        "run `make lock`"
    )


def test_the_lock_reader_sees_pins_and_skips_comments() -> None:
    text = "# header\nfoo-bar==1.2.3\n    # via baz\ntorch==2.13.0+cpu\n"
    assert locked_versions(text) == {"foo-bar": Version("1.2.3"), "torch": Version("2.13.0+cpu")}
