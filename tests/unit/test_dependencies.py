"""pyproject.toml's floors, constraints.txt's pins and the installed environment agree."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
#: Versions with published advisories that the floors must exclude.
ADVISORIES = {"orjson": "3.11.5", "aiohttp": "3.14.2"}
#: Installed by pip or venv itself, never by the project.
TOOLING = {"pip", "setuptools", "wheel", "segstream"}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        found.extend(Requirement(r) for r in extra)
    return found


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions: {line!r}"
            found[canonicalize_name(name)] = Version(version)
    return found


def test_every_requirement_is_pinned_within_its_range() -> None:
    pinned = pins()
    for requirement in requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in constraints.txt (make constraints)"
        assert requirement.specifier.contains(pinned[name]), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}"
        )


def test_floors_exclude_versions_with_advisories() -> None:
    by_name = {canonicalize_name(r.name): r for r in requirements()}
    for name, vulnerable in ADVISORIES.items():
        assert not by_name[name].specifier.contains(vulnerable), (name, by_name[name])
        assert pins()[name] > Version(vulnerable)


def test_the_environment_is_what_constraints_pin() -> None:
    pinned = pins()
    installed = {
        canonicalize_name(d.metadata["Name"]): Version(d.version)
        for d in importlib.metadata.distributions()
    }
    for name, version in pinned.items():
        assert installed.get(name) == version, (
            f"{name}: installed {installed.get(name)}, constraints.txt pins {version} "
            "(make venv installs the pins; make constraints re-pins)"
        )
    unpinned = sorted(set(installed) - set(pinned) - TOOLING)
    assert not unpinned, f"installed but not pinned in constraints.txt: {unpinned}"
