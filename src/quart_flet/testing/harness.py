"""``FletHarness``: a Quart app under test (its serving hooks run, as under
Hypercorn) and the users who open it, each through the app's real Flet
WebSocket route with Quart's test client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from quart import Quart, Response
from quart.testing import QuartClient

from quart_flet.client.files import WebClient
from quart_flet.session.registry import EXTENSION_KEY, FletRegistry
from quart_flet.testing.actions import FletUser
from quart_flet.testing.client import DEFAULT_TIMEOUT
from quart_flet.testing.fakes import ClientFakes


class LazyWebClient(WebClient):
    """The web client under the harness: nothing is done at startup (a test
    talks over the WebSocket and never loads the Flutter client, so no
    manifest patching, no versioned bootstrap, no compressed-client build);
    the first request for one of its files prepares it as a server would."""

    def __init__(self, client: WebClient) -> None:
        super().__init__(client.options)
        self._temp_dir: str | None = None
        self._prepared = False

    async def prepare(self, temp_dir: str) -> None:
        self._temp_dir = temp_dir
        self._prepared = False
        self.patched_dir = Path(temp_dir)  # started, as far as the routes can tell

    async def file(self, path: str, base: str, websocket_path: str) -> Response:
        if not self._prepared and self._temp_dir is not None:
            self._prepared = True
            await super().prepare(self._temp_dir)
        return await super().file(path, base, websocket_path)


def _lazy_web_clients(app: Quart) -> None:
    registry = app.extensions.get(EXTENSION_KEY)
    if not isinstance(registry, FletRegistry) or registry.started:
        return
    for name, webclient in registry.webclients.items():
        if type(webclient) is WebClient:
            registry.webclients[name] = LazyWebClient(webclient)


class HarnessError(RuntimeError):
    """The harness was used in a way it cannot work (no Flet app found...)."""


def flet_websockets(app: Quart) -> list[str]:
    """The paths of the Flet WebSocket routes of ``app`` ("/ws", "/shop/ws"):
    the blueprints' and those of FletApps on routes of the app's own."""
    registry = app.extensions.get(EXTENSION_KEY)
    if not isinstance(registry, FletRegistry):
        return []
    paths = []
    for mount in registry.mounts.values():
        with contextlib.suppress(KeyError):  # a route that does not exist (yet)
            paths += [r.rule for r in app.url_map.iter_rules(mount.routes.websocket) if r.websocket]
    return sorted(paths)


class FletHarness:
    """Run ``app`` for a test and open users on it::

    async with FletHarness(app) as harness:
        user = await harness.open_user()
        await user.tap(user.find_by_tooltip("Increment"))
        await user.should_see("1")
    """

    def __init__(self, app: Quart, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not isinstance(app, Quart):
            raise HarnessError(f"FletHarness needs a Quart app, got {app!r}")
        self.app = app
        self.timeout = timeout
        self.users: list[FletUser] = []
        self._lifespan: Any = None

    async def __aenter__(self) -> FletHarness:
        _lazy_web_clients(self.app)
        self._lifespan = self.app.test_app()
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        failures: list[BaseException] = []
        for user in self.users:
            try:
                await user.close()
            except AssertionError as failure:
                failures.append(failure)
        self.users.clear()
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.__aexit__(kind, error, traceback)
        if failures and error is None:
            raise failures[0]

    def test_client(self) -> QuartClient:
        """A fresh test client (its own cookie jar: another browser)."""
        return cast(QuartClient, self.app.test_client())

    def websocket_path(self, mount: str | None) -> str:
        paths = flet_websockets(self.app)
        if not paths:
            raise HarnessError(
                f"{self.app.name!r} has no Flet app: register flet_blueprint(main) on it, "
                "or build it with quart_app(main)"
            )
        if mount is not None:
            wanted = mount.rstrip("/") + "/ws"
            for path in paths:
                if path in (wanted, mount) or path.rsplit("/", 1)[0] == mount.rstrip("/"):
                    return path
            raise HarnessError(f"no Flet app is mounted at {mount!r}; the app has {paths}")
        if len(paths) > 1:
            raise HarnessError(
                f"{self.app.name!r} has several Flet apps ({', '.join(paths)}): "
                "say which with open_user(mount='/prefix')"
            )
        return paths[0]

    async def open_user(
        self,
        route: str = "/",
        *,
        mount: str | None = None,
        headers: dict[str, str] | None = None,
        client: QuartClient | None = None,
        fakes: ClientFakes | None = None,
        timeout: float | None = None,
        width: int = 1280,
        height: int = 720,
    ) -> FletUser:
        """A new user (a new tab) on ``route`` of the Flet app at ``mount``.

        ``headers`` go on the WebSocket handshake; ``client`` is the Quart
        test client to use (its cookies too: a signed-in user); ``fakes``
        answer the app's client-side method calls.
        """
        if self._lifespan is None:
            raise HarnessError("open users inside `async with FletHarness(app) as harness:`")
        user = FletUser(
            client or self.test_client(),
            self.websocket_path(mount),
            route=route,
            headers=headers,
            fakes=fakes,
            timeout=self.timeout if timeout is None else timeout,
            width=width,
            height=height,
        )
        self.users.append(user)
        await user.connect()
        return user


@contextlib.asynccontextmanager
async def open_user(app: Quart, route: str = "/", **options: Any) -> AsyncIterator[FletUser]:
    """One user on ``app``, for the simplest tests::

    async with open_user(app) as user:
        await user.should_see("Hello")
    """
    async with FletHarness(app) as harness:
        yield await harness.open_user(route, **options)
