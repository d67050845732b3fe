"""Flet apps written for flet's own server, in real Chromium under a prefix:
routing through ``asyncio.create_task(page.push_route(...))`` in sync
lambdas (flet's routing examples), and a components todo list typed into
fast, where events must run in arrival order."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import SESSION_CRASHED, require_chromium
from test_browser import browser_page

pytestmark = pytest.mark.browser


def crashes(received: list[Any]) -> list[Any]:
    return [m for m in received if m and m[0] == SESSION_CRASHED]


async def test_routing_with_create_task_in_sync_lambdas(hypercorn: Any) -> None:
    require_chromium()
    server = hypercorn("tests.apps.push_routes:app", path="/books/")
    url = server.url + "/books/"
    received: list[Any] = []
    errors: list[str] = []
    async with browser_page(errors, received) as page:
        await page.goto(url)
        await page.get_by_text("Home view", exact=True).wait_for(timeout=60_000)
        await page.get_by_role("button", name="To shelf").click()
        shelf = page.get_by_text("Shelf view on a SessionLoop", exact=True)
        await shelf.wait_for(timeout=10_000)
        assert page.url == url + "shelf"
        await page.get_by_role("button", name="Back home").click()
        await shelf.wait_for(state="detached", timeout=10_000)
        assert page.url == url
        await page.go_back()  # the browser's back button: flet's route change
        await shelf.wait_for(timeout=10_000)
    assert not crashes(received), received
    assert not errors, errors


async def test_typing_fast_into_a_components_todo_list(hypercorn: Any) -> None:
    require_chromium()
    server = hypercorn("tests.apps.fast_todo:app", path="/todo/")
    received: list[Any] = []
    errors: list[str] = []
    async with browser_page(errors, received) as page:
        await page.goto(server.url + "/todo/")
        await page.get_by_text("0 todos", exact=True).wait_for(timeout=60_000)
        field = page.get_by_role("textbox")
        await field.click()
        for n, text in enumerate(["buy a loaf of bread", "walk the dog twice"], 1):
            await page.get_by_role("textbox").click()  # Enter took the focus away
            await page.keyboard.press("Control+A")  # the field keeps its text,
            await page.keyboard.press("Backspace")  # as on flet's own server
            await page.keyboard.type(text)  # no delay between keys
            await page.keyboard.press("Enter")
            await page.get_by_text(f"{n} todos", exact=True).wait_for(timeout=10_000)
            await page.get_by_text(f"todo: {text}", exact=True).wait_for(timeout=10_000)
    assert not crashes(received), received
    assert not errors, errors


async def test_signing_in_and_out_through_a_dialog_of_a_components_app(hypercorn: Any) -> None:
    require_chromium()
    server = hypercorn("tests.apps.members:app", path="/club/")
    received: list[Any] = []
    errors: list[str] = []
    async with browser_page(errors, received) as page:
        await page.goto(server.url + "/club/")
        for _ in range(3):  # the race it guards against hit about one run in two
            await page.get_by_text("Who are you?", exact=True).wait_for(timeout=60_000)
            await page.get_by_role("button", name="Enter").click()
            await page.get_by_text("Member ada", exact=True).wait_for(timeout=10_000)
            await page.get_by_role("button", name="Leave").click()
    assert not crashes(received), received
    assert not errors, errors
