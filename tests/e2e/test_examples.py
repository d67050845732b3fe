"""Every example app imports, serves its pages and runs its Flet app,
through Quart's test client."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from conftest import UPDATE_CONTROL_PROPS, FletTestClient, encode, find_controls
from quart import Quart


def load(module: str) -> Quart:
    app = importlib.import_module(f"examples.{module}").app
    assert isinstance(app, Quart)
    return app


def base_href(body: bytes) -> str:
    found = re.search(rb'<base href="([^"]*)"', body)
    assert found is not None, body[:500]
    return found.group(1).decode()


async def count_once(client: Any, ws_path: str) -> None:
    """Register on ``ws_path``, see the counter at 0, click, see 1."""
    async with client.websocket(ws_path) as ws:
        flet = FletTestClient(ws)
        await flet.register()
        render = await flet.patch_with("Counter:")
        (counter,) = find_controls(render, key="counter")
        assert counter["value"] == "0"
        (fab,) = find_controls(render, _c="FloatingActionButton")
        await flet.click(fab["_i"])
        patch = await flet.patch_with("1")
        assert patch[1]["id"] == counter["_i"]


@pytest.mark.parametrize(
    ("module", "pages"),
    [
        ("counter", {"/": "/", "/any/route": "/"}),
        ("two_apps", {"/": "/", "/sub-app/": "/sub-app/", "/sub-app/x": "/sub-app/"}),
        ("existing_quart_app", {"/flet-app/": "/flet-app/", "/flet-app/x/y": "/flet-app/"}),
    ],
)
async def test_example_serves_its_flet_pages(module: str, pages: dict[str, str]) -> None:
    app = load(module)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for path, base in pages.items():
            response = await client.get(path)
            assert response.status_code == 200, path
            assert base_href(await response.get_data()) == base, path


async def test_counter_example_counts() -> None:
    async with load("counter").test_app() as test_app:
        await count_once(test_app.test_client(), "/ws")


async def test_two_apps_example_runs_both_apps() -> None:
    async with load("two_apps").test_app() as test_app:
        client = test_app.test_client()
        await count_once(client, "/ws")
        redirect = await client.get("/sub-app")
        assert redirect.status_code == 308
        assert redirect.headers["Location"] == "/sub-app/"
        async with client.websocket("/sub-app/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            render = await flet.patch_with("Greeter")
            (name,) = find_controls(render, key="name")
            (greeting,) = find_controls(render, key="greeting")
            (button,) = find_controls(render, _c="Button")
            assert greeting["value"] == "Hello, stranger"
            # what the web client sends when the user types into the field
            await ws.send(
                encode(UPDATE_CONTROL_PROPS, {"id": name["_i"], "props": {"value": "Ada"}})
            )
            await flet.click(button["_i"])
            patch = await flet.patch_with("Hello, Ada")
            assert patch[1]["id"] == greeting["_i"]


async def test_existing_quart_app_keeps_its_routes() -> None:
    async with load("existing_quart_app").test_app() as test_app:
        client = test_app.test_client()
        hello = await client.get("/api/hello")
        assert hello.status_code == 200
        assert await hello.get_json() == {"message": "hello from Quart"}
        about = await client.get("/about")
        assert about.status_code == 200
        assert b"<h1>About</h1>" in await about.get_data()
        home = await client.get("/")
        assert b'href="/flet-app/"' in await home.get_data()
        redirect = await client.get("/flet-app")
        assert redirect.status_code == 308
        assert redirect.headers["Location"] == "/flet-app/"
        await count_once(client, "/flet-app/ws")


# `python examples/counter.py` serves it: tests/cli/test_run.py
