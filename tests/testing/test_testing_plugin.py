"""The pytest plugin as a user meets it: the app named in the ini options,
the error when no app is named, and the entry point that installs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT

TEST = """
async def test_counts(flet_user, open_flet_user):
    await flet_user.tap(flet_user.find_by_tooltip("Increment"))
    await flet_user.should_see(flet_user.find_by_text("1"))
    other = await open_flet_user()
    await other.should_see(other.find_by_text("0"))
"""


def run_pytest(folder: Path, ini: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_it.py").write_text(TEST)
    (folder / "pytest.ini").write_text(
        f"[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n{ini}"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "quart_flet.testing.plugin"]
        + ["-p", "no:cacheprovider", "test_it.py"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_app_named_in_the_ini_options(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "quart_flet_app = examples.counter:app\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_no_app_is_a_clear_error(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "")
    assert result.returncode == 1
    assert "no app under test: define a fixture named flet_app_under_test" in result.stdout


def test_an_app_that_is_not_a_quart_app_is_a_clear_error(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "quart_flet_app = examples.counter:main\n")
    assert "examples.counter:main' is <function main" in result.stdout, result.stdout


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plugins = project["entry-points"]["pytest11"]
    # named as its module: a conftest's pytest_plugins naming it is the same plugin
    assert plugins == {"quart_flet.testing.plugin": "quart_flet.testing.plugin"}
