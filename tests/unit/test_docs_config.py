"""``.env.example`` and ``docs/configuration.md`` are exactly what docs/gen_config.py makes.

If this fails after a change to swarmdash/settings.py, run ``.venv/bin/python docs/gen_config.py``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path
from types import ModuleType

import pytest

from swarmdash.settings import Settings, describe, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config", ROOT / "docs" / "gen_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()


def test_env_example_is_generated() -> None:
    assert (ROOT / ".env.example").read_text() == gen.render_env_example()


def test_configuration_md_is_generated() -> None:
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == gen.render_configuration(current)


@pytest.mark.parametrize("name", [row[0] for row in describe()])
def test_every_setting_is_documented(name: str) -> None:
    assert f"\n{name}=" in (ROOT / ".env.example").read_text()
    assert f"| `{name}` |" in (ROOT / "docs" / "configuration.md").read_text()


def test_every_setting_has_a_section() -> None:
    listed = [row[0] for _, rows in gen.sections() for row in rows]
    assert sorted(listed) == sorted(f.metadata["env"] for f in fields(Settings))


def test_env_example_loads_as_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARMDASH_ENV_FILE", raising=False)
    assert load_settings(environ={}, env_file=ROOT / ".env.example") == Settings()
