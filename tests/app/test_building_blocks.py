"""The public building blocks (FletApp's four blocks on routes of the app's
own), the QuartFlet extension, option precedence, the session lifecycle
hooks."""

from __future__ import annotations

import asyncio
import importlib
import typing
from pathlib import Path
from typing import Any

import flet as ft
import pytest
from conftest import PATCH_CONTROL, FletTestClient, browser, find_controls, start_counter
from quart import Quart, Response
from quart.testing.app import LifespanError
from quart_auth import AuthUser, QuartAuth, authenticated_client, login_user

import quart_flet
from examples import own_routes
from quart_flet import (
    FletApp,
    FletOptions,
    FletOptionsArgs,
    FletRoutes,
    OptionError,
    QuartFlet,
    SessionEndReason,
    flet_blueprint,
)
from quart_flet.session.registry import get_registry

PACKAGE = Path(quart_flet.__file__).parent  # the installed package


# ---- the blocks on hand-written routes ---------------------------------------


async def test_own_routes_serve_the_counter_at_paths_of_their_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLET_SECRET_KEY", "test")
    monkeypatch.setenv("FLET_UPLOAD_DIR", str(tmp_path))
    app = importlib.reload(own_routes).app  # options are read when the module runs
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = await client.get("/counter/")
        html = await index.get_data(as_text=True)
        assert index.status_code == 200
        assert '<base href="/counter/"' in html
        assert 'flet.webSocketEndpoint="/sockets/counter"' in html  # from url_for
        assert index.headers["Cross-Origin-Embedder-Policy"] == "credentialless"
        assert (await client.get("/counter/main.dart.js")).status_code == 200
        deep = await client.get("/counter/some/route")  # the SPA's own route
        assert deep.status_code == 200 and '<base href="/counter/"' in await deep.get_data(
            as_text=True
        )
        async with client.websocket("/sockets/counter") as ws:
            flet = FletTestClient(ws)
            fab = await start_counter(flet)
            await flet.click(fab)
            await flet.patch_with("1")


async def _upload_url_of(app: Quart, websocket_path: str) -> str:
    async with app.test_app() as test_app, test_app.test_client().websocket(websocket_path) as ws:
        flet = FletTestClient(ws)
        await flet.register()
        patch = await flet.receive_until(
            lambda m: m[0] == PATCH_CONTROL and find_controls(m[1], key="url")
        )
    return str(find_controls(patch, key="url")[0]["value"])


def url_main(page: ft.Page) -> None:
    page.add(ft.Text(page.get_upload_url("a b.txt", expires=60), key="url"))


async def test_the_upload_url_is_the_upload_route_s_own(tmp_path: Path) -> None:
    app = Quart(__name__)
    app.secret_key = "test"
    flet = FletApp(
        url_main,
        upload_dir=tmp_path,
        routes=FletRoutes("page", "socket", upload="put_here"),
        app=app,
    )

    @app.get("/p/", defaults={"path": ""})
    @app.get("/p/<path:path>")
    async def page(path: str) -> Response:
        return await flet.static_files(path)

    @app.websocket("/elsewhere/socket")
    async def socket() -> None:
        await flet.handle()

    @app.put("/uploads/here")
    async def put_here() -> Response:
        return await flet.upload()

    url = await _upload_url_of(app, "/elsewhere/socket")
    assert url.startswith("/uploads/here?f=a+b.txt&e=60&s="), url
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(url, data=b"hello")
        assert response.status_code == 200, await response.get_data(as_text=True)
    assert (tmp_path / "a b.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (FletRoutes("page", "nowhere"), "FletRoutes(websocket='nowhere') .* no route"),
        (FletRoutes("page", "page"), "FletRoutes(websocket='page') .* a WebSocket route"),
        (FletRoutes("socket", "socket"), "FletRoutes(index='socket') .* an HTTP route"),
    ],
)
async def test_routes_that_do_not_exist_fail_at_startup_naming_them(
    routes: FletRoutes, message: str
) -> None:
    app = Quart(__name__)
    FletApp(url_main, routes=routes, app=app)

    @app.get("/")
    async def page() -> str:
        return ""

    @app.websocket("/ws")
    async def socket() -> None:
        pass

    with pytest.raises(LifespanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        async with app.test_app():
            pass


def test_a_flet_app_without_routes_says_what_it_needs() -> None:
    with pytest.raises(OptionError, match=r"needs routes=FletRoutes"):
        FletApp(url_main).init_app(Quart(__name__))


def test_a_bad_option_fails_when_the_flet_app_is_made() -> None:
    with pytest.raises(OptionError, match="max_threads"):
        FletApp(url_main, max_threads=0)  # type: ignore[typeddict-item]
    with pytest.raises(OptionError, match="did you mean 'upload_dir'"):
        QuartFlet(upload_dri="x")  # type: ignore[call-arg]


async def test_an_index_route_that_needs_arguments_fails_at_startup() -> None:
    app = Quart(__name__)
    FletApp(url_main, routes=FletRoutes("page", "socket"), app=app)

    @app.get("/p/<path:path>")  # no defaults={"path": ""}: url_for("page") cannot build
    async def page(path: str) -> str:
        return ""

    @app.websocket("/ws")
    async def socket() -> None:
        pass

    with pytest.raises(
        LifespanError, match=r'must build without arguments .*defaults=\{"path": ""\}'
    ):
        async with app.test_app():
            pass


def refusing(page: ft.Page) -> None:
    raise RuntimeError("not today")


async def test_after_a_before_main_error_a_refresh_shows_it_again() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(hello, refusing))
    registry = get_registry(app)
    async with app.test_app() as test_app:
        for session_id in (None, "from-before"):
            async with test_app.test_client().websocket("/ws") as ws:
                flet = FletTestClient(ws)
                reply = await flet.register(session_id)
                assert "not today" in reply[1]["error"]
            assert not registry.sessions  # nothing kept: main never ran


async def test_a_non_singleton_quart_auth_leaves_the_user_unknown() -> None:
    from quart_flet import handshake

    seen: list[str | None] = []

    def who(page: ft.Page) -> None:
        seen.append(handshake(page).auth_id)
        page.add(ft.Text("hi"))

    app = Quart(__name__)
    app.secret_key = "test"
    QuartAuth(app, singleton=False, cookie_name="ADMIN")
    app.register_blueprint(flet_blueprint(who))
    async with app.test_app() as test_app, test_app.test_client().websocket("/ws") as ws:
        flet = FletTestClient(ws)
        await flet.register()
        await flet.patch_with("hi")
    assert seen == [None]


# ---- the extension -----------------------------------------------------------


def test_quart_flet_is_set_up_once_per_app() -> None:
    app = Quart(__name__)
    QuartFlet(app)
    with pytest.raises(OptionError, match="twice"):
        QuartFlet(app)
    late = Quart(__name__)
    late.register_blueprint(flet_blueprint(url_main))  # makes one with defaults
    with pytest.raises(OptionError, match="registered before QuartFlet"):
        QuartFlet().init_app(late)


def test_init_app_later_and_on_several_apps() -> None:
    flet = QuartFlet(max_threads=3)
    first, second = Quart(__name__), Quart(__name__)
    for app in (first, second):
        flet.init_app(app)
        app.register_blueprint(flet_blueprint(url_main))
        assert get_registry(app).max_threads == 3
    assert get_registry(first) is not get_registry(second)


def _options(app: Quart, name: str = "flet") -> FletOptions:
    return get_registry(app).mounts[name].options


def test_option_precedence_env_then_argument_then_config_then_extension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """environment > the Flet app's argument > app.config > QuartFlet(...) > default"""
    monkeypatch.delenv("FLET_SESSION_TIMEOUT", raising=False)

    def build(argument: bool, config: bool, extension: bool) -> FletOptions:
        app = Quart(__name__)
        if config:
            app.config["FLET_SESSION_TIMEOUT"] = 30
        QuartFlet(app, **({"session_timeout_seconds": 40} if extension else {}))
        opts: dict[str, Any] = {"session_timeout_seconds": 20} if argument else {}
        app.register_blueprint(flet_blueprint(url_main, **opts))
        return _options(app)

    assert build(False, False, False).session_timeout_seconds == 3600
    assert build(False, False, True).session_timeout_seconds == 40
    assert build(False, True, True).session_timeout_seconds == 30
    assert build(True, True, True).session_timeout_seconds == 20
    monkeypatch.setenv("FLET_SESSION_TIMEOUT", "10")
    assert build(True, True, True).session_timeout_seconds == 10


def test_a_bad_config_value_names_its_key() -> None:
    app = Quart(__name__)
    app.config["FLET_MAX_THREADS"] = "many"
    with pytest.raises(OptionError, match=r"max_threads \(from app.config\['FLET_MAX_THREADS'\]\)"):
        app.register_blueprint(flet_blueprint(url_main))


def _members(annotation: Any) -> set[Any]:
    """The classes an annotation admits (a Union's members, Literal values' types)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, __import__("types").UnionType):
        return set().union(*(_members(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {type(value) for value in typing.get_args(annotation)}
    if origin is not None:
        return {origin}
    return {annotation}


def test_the_typed_keyword_arguments_match_flet_options() -> None:
    hints = typing.get_type_hints(FletOptionsArgs)
    fields = typing.get_type_hints(FletOptions)
    assert set(hints) == set(fields)
    for name, field_type in fields.items():
        admitted = _members(hints[name])
        for kind in _members(field_type):
            kind = bool if kind is bool else kind
            assert (
                any(
                    kind is allowed or (isinstance(kind, type) and issubclass(kind, allowed))
                    for allowed in admitted
                    if isinstance(allowed, type) or allowed is None
                )
                or kind in admitted
            ), (name, kind, admitted)


# ---- lifecycle hooks ---------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.ended = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def start(self, page: ft.Page) -> None:  # sync: in the pool
        self.events.append(("start", page.session.id, None))

    async def end(self, page: ft.Page, reason: SessionEndReason) -> None:
        self.events.append(("end", page.session.id, reason))
        self.ended.set()


def hooked_app(recorder: Recorder, main: Any, **opts: Any) -> Quart:
    def tracing_main(page: ft.Page) -> None:
        recorder.events.append(("main", page.session.id, None))
        main(page)

    app = Quart(__name__)
    app.secret_key = "test"
    QuartAuth(app)

    @app.get("/login/<name>")
    async def login(name: str) -> str:
        login_user(AuthUser(name))
        return "ok"

    app.register_blueprint(
        flet_blueprint(
            tracing_main, on_session_start=recorder.start, on_session_end=recorder.end, **opts
        )
    )
    return app


def hello(page: ft.Page) -> None:
    page.add(ft.Text("hello"))


async def test_start_runs_before_main_and_a_refresh_is_not_an_end() -> None:
    recorder = Recorder()
    app = hooked_app(recorder, hello)
    async with app.test_app() as test_app:
        client = browser(test_app)  # one browser, its id with it
        async with client.websocket("/ws") as ws:
            first = FletTestClient(ws)
            await first.register()
            await first.patch_with("hello")
        async with client.websocket("/ws") as ws:  # a refresh: the session resumes
            again = FletTestClient(ws)
            await again.register(first.session_id)
        assert again.session_id == first.session_id
        sid = first.session_id
        assert recorder.events == [("start", sid, None), ("main", sid, None)]
    # the server stopped: the session ended, once
    assert recorder.events[2:] == [("end", sid, SessionEndReason.SHUTDOWN)]


async def test_a_session_whose_browser_never_returns_expires() -> None:
    recorder = Recorder()
    app = hooked_app(recorder, hello, session_timeout_seconds=0.2)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            await flet.patch_with("hello")
        await asyncio.wait_for(recorder.ended.wait(), 10)
        assert recorder.events[-1] == ("end", flet.session_id, SessionEndReason.EXPIRED)
    assert [e for e in recorder.events if e[0] == "end"] == [recorder.events[-1]]  # once


async def test_a_crashed_session_ends_as_crashed() -> None:
    def broken(page: ft.Page) -> None:
        raise RuntimeError("boom")

    recorder = Recorder()
    app = hooked_app(recorder, broken, session_timeout_seconds=0.2)
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            await flet.receive_until(lambda m: "boom" in str(m))
        await asyncio.wait_for(recorder.ended.wait(), 10)
    assert recorder.events[-1] == ("end", flet.session_id, SessionEndReason.CRASHED)


async def test_a_session_taken_over_by_another_identity_is_closed() -> None:
    recorder = Recorder()
    app = hooked_app(recorder, hello)
    async with app.test_app() as test_app:
        client = browser(test_app)  # one browser, its id with it
        async with authenticated_client(client, "alice"), client.websocket("/ws") as ws:
            first = FletTestClient(ws)
            await first.register()
        async with client.websocket("/ws") as ws:  # the same browser, signed out
            again = FletTestClient(ws)
            await again.register(first.session_id)
        await asyncio.wait_for(recorder.ended.wait(), 10)
        assert again.session_id != first.session_id
        ends = [event for event in recorder.events if event[0] == "end"]
        assert ends == [("end", first.session_id, SessionEndReason.CLOSED)]
