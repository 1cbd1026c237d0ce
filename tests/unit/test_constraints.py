"""The Docker image installs pinned versions: constraints.txt covers every runtime
dependency of pyproject.toml, within its ranges, and the Dockerfile installs with it.

If this fails after a change to the dependencies, run ``.venv/bin/python
docs/gen_constraints.py`` and commit constraints.txt.
"""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

from packaging.utils import canonicalize_name

from tests.helpers import ROOT


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_constraints", ROOT / "docs" / "gen_constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()
PINS: dict[str, str] = gen.read_pins((ROOT / "constraints.txt").read_text())


def test_every_dependency_is_pinned_within_its_range() -> None:
    for req in gen.direct_requirements():
        name = canonicalize_name(req.name)
        assert name in PINS, f"{req.name} is not in constraints.txt"
        assert req.specifier.contains(PINS[name], prereleases=True), (
            f"constraints.txt pins {name}=={PINS[name]}, outside pyproject's {req}")


def test_every_dependency_of_a_dependency_is_pinned_and_nothing_else() -> None:
    needed = set(gen.closure())
    assert not needed - set(PINS), f"not pinned: {sorted(needed - set(PINS))}"
    assert not set(PINS) - needed, f"pinned but not installed: {sorted(set(PINS) - needed)}"


def test_the_dockerfile_installs_with_the_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.search(r"^COPY ([^\n]*)constraints\.txt", dockerfile, re.M)
    installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert copied and installs
    assert all("-c constraints.txt" in line for line in installs), installs
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "constraints.txt" not in ignored and "*.txt" not in ignored
