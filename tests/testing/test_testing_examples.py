"""Every app in examples/, tested the way their users would: with
quart_flet.testing, through the app's real WebSocket route."""

from __future__ import annotations

import importlib
from pathlib import Path

import flet as ft
import pytest
from quart import Quart

from quart_flet.testing import FletHarness, FletUser, PickedFile, open_user


def example(module: str) -> Quart:
    app = importlib.import_module(f"examples.{module}").app
    assert isinstance(app, Quart)
    return app


@pytest.fixture(name="flet_app_under_test")
def _counter_app() -> Quart:
    return example("counter")


async def test_counter_counts(flet_user: FletUser) -> None:
    await flet_user.should_see("Counter:")
    assert flet_user.find_by_key("counter").one().get("value") == "0"
    for expected in ("1", "2", "3"):
        await flet_user.tap(flet_user.find_by_tooltip("Increment"))
        await flet_user.should_see(flet_user.find_by_text(expected))


async def test_counter_button_is_found_by_its_icon(flet_user: FletUser) -> None:
    await flet_user.tap(flet_user.find_by_icon(ft.Icons.ADD))
    await flet_user.should_see(flet_user.find_by_text("1"))


async def test_counter_users_count_apart(open_flet_user: object) -> None:
    alice = await open_flet_user()  # type: ignore[operator]
    bob = await open_flet_user()  # type: ignore[operator]
    await alice.tap(alice.find_by_tooltip("Increment"))
    await alice.should_see(alice.find_by_text("1"))
    await bob.should_see(bob.find_by_text("0"))


async def test_components_counter_rerenders_from_a_sync_handler() -> None:
    async with open_user(example("components")) as user:
        await user.should_see("Clicked 0 times")
        await user.tap("Add one")
        await user.should_see("Clicked 1 times")
        await user.tap("Add one")
        await user.should_see("Clicked 2 times")


async def test_routing_example_navigates_with_views() -> None:
    async with FletHarness(example("routing")) as harness:
        user = await harness.open_user(mount="/shop")
        await user.should_see("Flet app")
        await user.tap("Visit Store")
        await user.should_see(user.find_by_text("Store"))  # "Visit Store" contains "Store"
        assert user.route == "/store"
        await user.should_not_see("Visit Store")  # the home view is under the store's
        await user.back()
        await user.should_see("Visit Store")
        await user.should_not_see(user.find_by_text("Store"))


async def test_routing_example_deep_link_and_app_bar_back() -> None:
    async with FletHarness(example("routing")) as harness:
        user = await harness.open_user("/store", mount="/shop")
        await user.should_see("Go Home")
        await user.pop_view()  # the AppBar's back arrow
        await user.should_see("Visit Store")
        assert user.route == "/"


async def test_two_apps_each_at_its_mount() -> None:
    async with FletHarness(example("two_apps")) as harness:
        counter = await harness.open_user(mount="/")
        greeter = await harness.open_user(mount="/sub-app")
        await counter.should_see("Counter:")
        await greeter.should_see("Hello, stranger")
        await greeter.enter_text(greeter.find_by_key("name"), "Ada")
        await greeter.tap("Greet")
        await greeter.should_see("Hello, Ada")


async def test_existing_quart_app_keeps_its_routes_beside_flet() -> None:
    app = example("existing_quart_app")
    async with FletHarness(app) as harness:
        user = await harness.open_user()  # the one Flet app, found under /flet-app
        assert user.ws_path == "/flet-app/ws"
        await user.tap(user.find_by_tooltip("Increment"))
        await user.should_see(user.find_by_text("1"))
        response = await harness.test_client().get("/api/hello")
        assert (await response.get_json()) == {"message": "hello from Quart"}


async def test_mixed_handlers_sync_and_async_both_answer() -> None:
    # the handlers wait 3 s each, by design of the example: both at once
    async with open_user(example("mixed_handlers"), timeout=15) as user:
        await user.tap("Call handler")
        await user.tap("Call async handler")
        await user.should_see("Handler clicked")
        await user.should_see("Async handler clicked")


async def test_upload_example_uploads_the_picked_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLET_SECRET_KEY", "test-secret")
    monkeypatch.setenv("FLET_UPLOAD_DIR", str(tmp_path))
    module = importlib.reload(importlib.import_module("examples.upload"))
    async with open_user(module.app) as user:
        user.fakes.files_to_pick = [
            PickedFile("notes.txt", b"hello"),
            PickedFile("data.bin", bytes(range(256)) * 64),
        ]
        await user.tap("Pick files and upload")
        await user.should_see("notes.txt: 100%")
        await user.should_see("data.bin: 100%")
    assert (tmp_path / "notes.txt").read_bytes() == b"hello"
    assert (tmp_path / "data.bin").stat().st_size == 256 * 64


async def test_own_routes_example_counts_and_uploads_at_its_own_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLET_SECRET_KEY", "test-secret")
    monkeypatch.setenv("FLET_UPLOAD_DIR", str(tmp_path))
    module = importlib.reload(importlib.import_module("examples.own_routes"))
    async with FletHarness(module.app) as harness:
        counter = await harness.open_user(mount="/sockets/counter")
        await counter.tap(counter.find_by_tooltip("Increment"))
        await counter.should_see("1")
        files = await harness.open_user(mount="/sockets/files")
        files.fakes.files_to_pick = [PickedFile("own.txt", b"from my routes")]
        await files.tap("Pick files and upload")
        await files.should_see("own.txt: 100%")
    assert (tmp_path / "own.txt").read_bytes() == b"from my routes"


async def test_login_example_greets_the_signed_in_user() -> None:
    from quart_auth import authenticated_client

    app = example("login")
    async with FletHarness(app) as harness:
        client = harness.test_client()
        async with authenticated_client(client, "grace"):
            user = await harness.open_user(client=client)
            await user.should_see("Signed in as grace")
