"""quart_flet.testing against apps it was not written for: forms, dialogs,
overlays, a data table, a chat between two users, client-side methods,
crashes, resume, signed-in users, and the errors of misuse."""

from __future__ import annotations

import asyncio
from typing import Any

import flet as ft
import pytest
from quart import Quart, abort, websocket

from quart_flet import flet_blueprint, handshake, quart_app
from quart_flet.testing import (
    ActionError,
    Disconnected,
    FinderError,
    FletHarness,
    FletUser,
    HarnessError,
    SessionCrashed,
    open_user,
)


async def form_main(page: ft.Page) -> None:
    echo = ft.Text("", key="echo")
    changes: list[str] = []
    submitted = ft.Text("", key="submitted")

    def on_change(e: ft.Event[ft.TextField]) -> None:
        changes.append(e.control.value or "")
        echo.value = f"typed {e.control.value} ({len(changes)} changes)"

    async def on_submit(e: ft.Event[ft.TextField]) -> None:
        submitted.value = f"submitted {e.control.value}"
        submitted.update()

    agree = ft.Checkbox(label="I agree", on_change=lambda e: status("agree", e.control.value))
    dark = ft.Switch(label="Dark mode", on_change=lambda e: status("dark", e.control.value))
    size = ft.RadioGroup(
        content=ft.Row([ft.Radio(value="s", label="Small"), ft.Radio(value="l", label="Large")]),
        on_change=lambda e: status("size", e.control.value),
    )
    colour = ft.Dropdown(
        label="Colour",
        options=[ft.DropdownOption(key="r", text="Red"), ft.DropdownOption(key="g", text="Green")],
        on_select=lambda e: status("colour", e.control.value),
    )
    volume = ft.Slider(
        min=0, max=10, value=2, on_change_end=lambda e: status("volume", e.control.value)
    )
    out = ft.Text("", key="status")
    save = ft.Button("Save", disabled=True)

    def status(name: str, value: Any) -> None:
        out.value = f"{name}={value}"

    page.add(
        ft.TextField(label="Name", on_change=on_change, on_submit=on_submit),
        echo,
        submitted,
        agree,
        dark,
        size,
        colour,
        volume,
        out,
        save,
        ft.Text("secret", visible=False),
    )


@pytest.fixture(name="form")
async def _form() -> Any:
    async with open_user(quart_app(form_main)) as user:
        yield user


async def test_enter_text_fires_on_change_then_on_submit(form: FletUser) -> None:
    await form.enter_text(form.find_by_type(ft.TextField), "Ada", submit=True)
    await form.should_see("typed Ada (1 changes)")
    await form.should_see("submitted Ada")


async def test_type_text_fires_on_change_per_key(form: FletUser) -> None:
    await form.type_text("Name", "Bob")
    await form.should_see("typed Bob (3 changes)")


async def test_checkbox_switch_radio_dropdown_slider(form: FletUser) -> None:
    await form.tap("I agree")
    await form.should_see("agree=True")
    await form.toggle("I agree")
    await form.should_see("agree=False")
    await form.toggle("Dark mode")
    await form.should_see("dark=True")
    await form.tap("Large")
    await form.should_see("size=l")
    await form.select("Small", "Small")
    await form.should_see("size=s")
    await form.select(form.find_by_type("Dropdown"), "Green")
    await form.should_see("colour=g")
    await form.should_see(form.find_by_text("Green"))  # the selected option is painted
    await form.should_not_see(form.find_by_text("Red"))  # the closed menu's are not
    await form.set_value(form.find_by_type(ft.Slider), 7)
    await form.should_see("volume=7")


async def test_misuse_fails_clearly(form: FletUser) -> None:
    with pytest.raises(ActionError, match="disabled"):
        await form.tap("Save")
    with pytest.raises(ActionError, match="no option 'Blue'"):
        await form.select(form.find_by_type("Dropdown"), "Blue")
    with pytest.raises(
        AssertionError,
        match=r"(?s)matches nothing \(waited 0.05 s\)\nOn screen:\n.*Checkbox 'I agree'",
    ):
        await form.tap("Nowhere", timeout=0.05)
    with pytest.raises(FinderError, match="matches 2 controls"):
        await form.tap(form.find_by_type(ft.Radio))
    await form.tap(form.find_by_type(ft.Radio).last)
    await form.should_see("size=l")
    with pytest.raises(AssertionError, match="expected to see text containing 'secret'"):
        await form.should_see("secret", timeout=0.05)  # visible=False is not on screen
    with pytest.raises(ActionError, match="cannot type into"):
        await form.enter_text("I agree", "x")


async def dialogs_main(page: ft.Page) -> None:
    log = ft.Text("", key="log")

    def closed(e: ft.Event[Any]) -> None:
        log.value = f"{log.value} dismissed:{type(e.control).__name__}"
        log.update()

    dialog = ft.AlertDialog(
        title=ft.Text("Delete?"),
        content=ft.Text("This cannot be undone"),
        actions=[ft.TextButton("Cancel", on_click=lambda e: page.pop_dialog())],
        on_dismiss=closed,
    )
    sheet = ft.BottomSheet(ft.Container(ft.Text("Sheet body")), on_dismiss=closed)
    page.add(
        log,
        ft.Button("Ask", on_click=lambda e: page.show_dialog(dialog)),
        ft.Button("Sheet", on_click=lambda e: page.show_dialog(sheet)),
        ft.Button("Toast", on_click=lambda e: page.show_dialog(ft.SnackBar(ft.Text("Saved")))),
        ft.Button("Toast 2", on_click=lambda e: page.show_dialog(ft.SnackBar(ft.Text("Again")))),
    )


async def test_alert_dialog_opens_closes_and_reopens() -> None:
    async with open_user(quart_app(dialogs_main)) as user:
        await user.should_not_see("Delete?")
        await user.tap("Ask")
        await user.should_see("This cannot be undone")
        await user.tap("Cancel")  # the app closes it; the client reports the dismissal
        await user.should_not_see("Delete?")
        await user.should_see("dismissed:AlertDialog")
        await user.tap("Ask")  # flet let go of it: it opens again
        await user.should_see("Delete?")
        await user.dismiss()  # a tap on the barrier
        await user.should_not_see("Delete?")
        await user.should_see("dismissed:AlertDialog dismissed:AlertDialog")


async def test_bottom_sheet_and_snack_bars() -> None:
    async with open_user(quart_app(dialogs_main)) as user:
        await user.tap("Sheet")
        await user.should_see("Sheet body")
        await user.dismiss(user.find_by_text("Sheet body"))
        await user.should_not_see("Sheet body")
        await user.should_see("dismissed:BottomSheet")
        await user.tap("Toast")
        await user.should_see("Saved")
        await user.tap("Toast 2")  # a snack bar replaces the one showing
        await user.should_see("Again")
        await user.should_not_see("Saved")


async def table_main(page: ft.Page) -> None:
    rows = [("Ada", 36), ("Alan", 41)]
    picked = ft.Text("", key="picked")

    def select(name: str) -> Any:
        def handler(e: ft.Event[ft.DataRow]) -> None:
            picked.value = f"picked {name}"

        return handler

    page.add(
        ft.DataTable(
            columns=[ft.DataColumn(ft.Text("Name")), ft.DataColumn(ft.Text("Age"), numeric=True)],
            rows=[
                ft.DataRow(
                    [ft.DataCell(ft.Text(n)), ft.DataCell(ft.Text(str(a)))],
                    on_select_change=select(n),
                )
                for n, a in rows
            ],
        ),
        picked,
    )


async def test_data_table_rows_and_selection() -> None:
    async with open_user(quart_app(table_main)) as user:
        await user.should_see("Age")
        assert "41" in user.texts()
        await user.tap("Alan")
        await user.should_see("picked Alan")


def chat_app() -> Quart:
    async def main(page: ft.Page) -> None:
        messages = ft.Column()
        name = page.route.strip("/") or "anon"

        def on_message(text: str) -> None:
            messages.controls.append(ft.Text(text))
            page.update()

        page.pubsub.subscribe(on_message)
        field = ft.TextField(label="Message")

        async def send(e: ft.Event[Any]) -> None:
            page.pubsub.send_all(f"{name}: {field.value}")
            field.value = ""
            page.update()

        field.on_submit = send
        page.add(messages, field, ft.Button("Send", on_click=send))

    return quart_app(main)


async def test_two_users_chat() -> None:
    async with FletHarness(chat_app()) as harness:
        alice = await harness.open_user("/alice")
        bob = await harness.open_user("/bob")
        await alice.enter_text("Message", "hi Bob", submit=True)
        await bob.should_see("alice: hi Bob")
        await bob.enter_text("Message", "hello")
        await bob.tap("Send")
        await alice.should_see("bob: hello")
        await alice.should_see("alice: hi Bob")
        assert alice.find_by_type("TextField").one().get("value") == ""


async def services_main(page: ft.Page) -> None:
    out = ft.Text("", key="out")
    clipboard = ft.Clipboard()
    prefs = ft.SharedPreferences()
    launcher = ft.UrlLauncher()

    async def copy(e: Any) -> None:
        await clipboard.set("copied text")
        out.value = f"pasted: {await clipboard.get()}"
        out.update()

    async def remember(e: Any) -> None:
        await prefs.set("visits", "3")
        out.value = f"visits {await prefs.get('visits')}, keys {await prefs.get_keys('')}"
        out.update()

    async def visit(e: Any) -> None:
        await launcher.launch_url("https://flet.dev")
        out.value = "launched"
        out.update()

    async def battery(e: Any) -> None:
        level = await ft.Battery().get_battery_level()
        out.value = f"battery {level}"
        out.update()

    page.add(
        out,
        ft.Button("Copy", on_click=copy),
        ft.Button("Remember", on_click=remember),
        ft.Button("Visit", on_click=visit),
        ft.Button("Battery", on_click=battery),
    )


async def test_client_methods_answered_by_fakes() -> None:
    async with open_user(quart_app(services_main)) as user:
        await user.tap("Copy")
        await user.should_see("pasted: copied text")
        assert user.fakes.clipboard == "copied text"
        user.fakes.shared_preferences["theme"] = "dark"
        await user.tap("Remember")
        await user.should_see("visits 3, keys ['theme', 'visits']")
        await user.tap("Visit")
        await user.should_see("launched")
        assert user.fakes.launched_urls == ["https://flet.dev"]
        user.fakes.on("Battery", "get_battery_level", lambda call: 42)
        await user.tap("Battery")
        await user.should_see("battery 42")


async def crash_main(page: ft.Page) -> None:
    def boom(e: Any) -> None:
        raise ValueError("the app's own bug")

    page.add(ft.Button("Boom", on_click=boom), ft.Text("ready"))


async def test_a_crash_fails_the_test_with_the_apps_traceback() -> None:
    with pytest.raises(SessionCrashed, match=r"(?s)the app's own bug.*Traceback.*in boom"):
        async with open_user(quart_app(crash_main)) as user:
            await user.tap("Boom")
            await user.should_see("never shown")


async def test_an_expected_crash_is_checked_and_passes() -> None:
    async with open_user(quart_app(crash_main)) as user:
        await user.tap("Boom")
        report = await user.should_crash("the app's own bug")
        assert 'raise ValueError("the app' in report


async def test_reconnect_resumes_the_session() -> None:
    async with open_user(quart_app(form_main)) as user:
        first = user.session_id
        await user.tap("I agree")
        await user.should_see("agree=True")
        await user.reconnect()
        assert user.session_id == first
        await user.should_see("agree=True")  # the state lived on the server
        await user.toggle("I agree")
        await user.should_see("agree=False")


def guarded_app() -> Quart:
    async def main(page: ft.Page) -> None:
        shake = handshake(page)
        page.add(ft.Text(f"hello {shake.headers.get('X-User', '?')}"))
        page.add(ft.Text(f"team {shake.cookies.get('team', '?')}"))

    app = Quart(__name__, static_folder=None)

    @app.before_websocket
    async def only_members() -> None:
        if websocket.headers.get("X-User") == "mallory":
            abort(403)

    app.register_blueprint(flet_blueprint(main), url_prefix="/members")
    return app


async def test_handshake_headers_and_cookies() -> None:
    async with FletHarness(guarded_app()) as harness:
        client = harness.test_client()
        client.set_cookie("localhost", "team", "blue")
        user = await harness.open_user(headers={"X-User": "ada"}, client=client)
        await user.should_see("hello ada")
        await user.should_see("team blue")
        with pytest.raises(Disconnected, match="HTTP 403"):
            await harness.open_user(headers={"X-User": "mallory"})


async def test_a_signed_in_user_with_quart_auth() -> None:
    from quart_auth import QuartAuth, authenticated_client, current_user

    async def main(page: ft.Page) -> None:
        page.add(ft.Text(f"signed in as {handshake(page).auth_id}"))

    app = Quart(__name__, static_folder=None)
    app.secret_key = "test only"
    QuartAuth(app)

    @app.before_websocket
    async def signed_in_only() -> None:
        if not await current_user.is_authenticated:
            abort(401)

    app.register_blueprint(flet_blueprint(main))
    async with FletHarness(app) as harness:
        with pytest.raises(Disconnected, match="HTTP 401"):
            await harness.open_user()
        client = harness.test_client()
        async with authenticated_client(client, "alice"):
            user = await harness.open_user(client=client)
            await user.should_see("signed in as alice")


async def test_harness_misuse_errors() -> None:
    with pytest.raises(HarnessError, match="has no Flet app"):
        async with FletHarness(Quart(__name__)) as harness:
            await harness.open_user()
    two = Quart(__name__, static_folder=None)
    two.register_blueprint(flet_blueprint(form_main, name="a"), url_prefix="/a")
    two.register_blueprint(flet_blueprint(form_main, name="b"), url_prefix="/b")
    async with FletHarness(two) as harness:
        with pytest.raises(HarnessError, match=r"several Flet apps \(/a/ws, /b/ws\)"):
            await harness.open_user()
        with pytest.raises(HarnessError, match="no Flet app is mounted at '/c'"):
            await harness.open_user(mount="/c")
        user = await harness.open_user(mount="/b")
        await user.should_see("I agree")
    with pytest.raises(HarnessError, match="inside `async with"):
        await FletHarness(two).open_user()


async def test_waits_are_event_driven_and_fast() -> None:
    async def main(page: ft.Page) -> None:
        text = ft.Text("waiting")

        async def later() -> None:
            await asyncio.sleep(0.2)  # the app's own timer, not the test's
            text.value = "done"
            text.update()

        page.add(text)
        page.run_task(later)

    async with open_user(quart_app(main)) as user:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await user.should_see("done", timeout=5)
        assert loop.time() - started < 2


async def test_moves_removes_and_inserts_apply_as_in_the_client() -> None:
    """flet's diff of a reordered list sends move operations whose paths
    resolve against the list as the earlier operations left it."""

    async def main(page: ft.Page) -> None:
        column = ft.Column([ft.Text(str(n)) for n in range(6)])

        def shuffle(e: Any) -> None:
            items = column.controls
            column.controls = [items[5], items[0], ft.Text("new"), items[3], items[1]]

        page.add(column, ft.Button("Shuffle", on_click=shuffle))

    async with open_user(quart_app(main)) as user:
        await user.should_see("5")
        await user.tap("Shuffle")
        await user.should_see("new")
        assert user.texts() == ["5", "0", "new", "3", "1", "Shuffle"]
