"""Flet's own example apps (flet-dev/flet, sdk/python/examples), unchanged,
driven through quart_flet.testing: what it reports is what Chromium shows
(the browser journeys of the same apps are in test_browser_flet_apps.py)."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from quart import Quart

from quart_flet import quart_app
from quart_flet.testing import open_user

FLET_REPO = Path("/work/.mirror/flet-dev+flet/repo")


def flet_example(path: str) -> Quart:
    """``sdk/python/examples/<path>`` from a flet checkout, as a Quart app."""
    shown = subprocess.run(
        ["git", "--git-dir", str(FLET_REPO), "show", f"HEAD:sdk/python/examples/{path}"],
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        pytest.skip(f"flet's examples are not here ({FLET_REPO}): {shown.stderr.strip()}")
    name = "flet_example_" + path.replace("/", "_").removesuffix(".py")
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(shown.stdout, path, "exec"), module.__dict__)
    return quart_app(module.main)


@pytest.fixture(autouse=True)
def _forget_examples() -> Iterator[None]:
    yield
    for name in [n for n in sys.modules if n.startswith("flet_example_")]:
        del sys.modules[name]


async def test_calculator() -> None:
    async with open_user(flet_example("apps/calculator/main.py")) as user:
        for key in ("1", "2", "+", "3", "0", "="):
            await user.tap(user.find_by_text(key).last)  # the display shows digits too
        await user.should_see(user.find_by_text("42"))
        await user.tap("AC")
        await user.should_see(user.find_by_text("0").first)


async def test_todo_add_complete_filter_and_clear() -> None:
    async with open_user(flet_example("apps/todo/main.py")) as user:
        for task in ("milk", "eggs"):
            await user.enter_text(user.find_by_key("new_task"), task, submit=True)
            await user.should_see(user.find_by_text(task))
        await user.should_see("2 active item(s) left")
        await user.tap("milk")  # its checkbox, by its label
        await user.should_see("1 active item(s) left")
        await user.tap("completed")  # a tab
        await user.should_see(user.find_by_text("milk"))
        await user.should_not_see(user.find_by_text("eggs"))
        await user.tap("Clear completed")
        await user.should_not_see(user.find_by_text("milk"))
        await user.tap("all")
        await user.should_see(user.find_by_text("eggs"))


async def test_temperature_converter_updates_on_change() -> None:
    async with open_user(flet_example("apps/7guis/temperature_converter/main.py")) as user:
        await user.enter_text("Celsius", "100")
        await user.wait_until(
            lambda: user.find_by_text("Fahrenheit").one().get("value") == "212" or None,
            None,
            lambda: f"Fahrenheit is not 212.\n{user.summary()}",
        )
        await user.should_see("212")


async def test_dialogs_component_app() -> None:
    async with open_user(flet_example("apps/dialogs/main.py")) as user:
        await user.tap("Open dialog")
        await user.should_see("Delete item?")
        await user.tap("Delete")
        await user.should_not_see("Delete item?")
