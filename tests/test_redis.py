"""Issue 6: pubsub across processes through a real redis-server, and what
happens when Redis restarts under live sessions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import flet as ft
import pytest
import redis.asyncio as aioredis
from apps.chat import main as chat_main
from conftest import (
    FletTestClient,
    find_controls,
    free_port,
    require_service,
    wait_for_log,
)
from flet.auth.oauth_provider import OAuthProvider
from quart import Quart
from quart.testing.app import LifespanError
from test_pubsub import Chat, exercise_chat
from websockets.asyncio.client import connect

from quart_flet import flet_blueprint
from quart_flet.backends.redis import OAUTH_KEY_PREFIX, RedisOAuthStateStore, Signer, channel_for
from quart_flet.registry import get_registry

KEY = "redis-test-key"

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A throwaway redis-server on a loopback port that can be killed and
    brought back on the same port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--logfile", str(self.log_path)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(7) == b"+PONG\r\n"
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(name="redis_server")
def _redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_service(
        "redis-server",
        Path(REDIS_SERVER).exists(),
        "apt-get install redis-server (the tests start their own on a free port)",
    )
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


class WebsocketsAdapter:
    """The receive/send pair FletTestClient expects, over a `websockets` client."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.send = ws.send
        self.receive = ws.recv


@pytest.mark.redis
@pytest.mark.server
async def test_pubsub_crosses_processes_and_survives_a_redis_restart(
    redis_server: RedisServer,
    hypercorn: Any,  # servers stop before Redis does
) -> None:
    env = {"FLET_REDIS_URL": redis_server.url, "FLET_SECRET_KEY": KEY}
    servers = [hypercorn("tests.apps.chat:app", env=env) for _ in range(2)]
    sockets = [await connect(s.url.replace("http", "ws") + "/ws") for s in servers]
    try:
        a, b = [await Chat.join(WebsocketsAdapter(ws)) for ws in sockets]
        await exercise_chat(a, b)
        await b.send("all", "from-b")
        await a.expect("all:from-b")

        redis_server.kill()
        for server in servers:
            wait_for_log(server, "Redis pubsub connection to")
        await a.send("all", "during-outage")
        await a.expect("all:during-outage")  # A keeps serving its own sessions
        wait_for_log(servers[0], "NOT published to Redis channel quart-flet:pubsub:flet")
        assert "during-outage" in servers[0].log()

        redis_server.start()
        for server in servers:
            wait_for_log(server, "Redis pubsub reconnected")
        await exercise_chat(a, b, tag="-after")
        await b.send("all", "from-b-after")
        await a.expect("all:from-b-after")
        assert not b.saw("during-outage")
    finally:
        for ws in sockets:
            await ws.close()
    for server in servers:
        assert server.proc.poll() is None, server.log()
        assert "Traceback" not in server.log(), server.log()


async def test_two_flet_apps_with_different_redis_urls_are_an_option_error() -> None:
    app = Quart(__name__)
    app.register_blueprint(
        flet_blueprint(chat_main, name="a", redis_url="redis://one:6379", secret_key=KEY)
    )
    app.register_blueprint(
        flet_blueprint(
            chat_main, name="b", redis_url="redis://user:secret@two:6379", secret_key=KEY
        ),
        url_prefix="/b",
    )
    with pytest.raises(LifespanError, match="option redis_url") as error:
        async with app.test_app():  # startup
            pass
    assert "secret" not in str(error.value)


async def test_redis_url_without_a_secret_key_fails_at_startup_naming_it() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(chat_main, redis_url="redis://127.0.0.1:6379"))
    with pytest.raises(LifespanError, match="option secret_key") as error:
        async with app.test_app():
            pass
    assert "redis_url" in str(error.value) and "FLET_SECRET_KEY" in str(error.value)


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("this message stays in its process")

    def __str__(self) -> str:
        return "unpicklable"


async def test_an_unreachable_redis_at_startup_keeps_the_app_serving_locally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Quart(__name__)
    closed_port = free_port()  # nothing listens there
    app.register_blueprint(
        flet_blueprint(chat_main, redis_url=f"redis://127.0.0.1:{closed_port}", secret_key=KEY)
    )
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        test = test_app.test_client()
        a = await Chat.join(await stack.enter_async_context(test.websocket("/ws")))
        b = await Chat.join(await stack.enter_async_context(test.websocket("/ws")))
        await exercise_chat(a, b)
        get_registry(app).hub("flet").send_all(Unpicklable())
        await a.expect("all:unpicklable")  # delivered here all the same
    assert "cannot pickle it" in caplog.text
    assert "is not reachable: serving anyway" in caplog.text
    assert "NOT published to Redis channel quart-flet:pubsub:flet" in caplog.text
    assert "message='hello'" in caplog.text


@pytest.mark.redis
async def test_oauth_states_are_shared_between_workers_taken_once_and_expire(
    redis_server: RedisServer,
) -> None:
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    try:
        worker_a, worker_b = (RedisOAuthStateStore(client) for client in clients)
        await worker_a.put("app:state:s1", "pending", ttl=60)
        assert await worker_b.take("app:state:s1") == "pending"
        assert await worker_a.take("app:state:s1") is None  # once only

        await worker_a.put("app:state:s2", "short", ttl=0.05)
        deadline = asyncio.get_running_loop().time() + 5
        while await clients[1].exists(OAUTH_KEY_PREFIX + "app:state:s2"):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)  # bounded polling on Redis's own expiry
        assert await worker_b.take("app:state:s2") is None
    finally:
        for client in clients:
            await client.aclose()


PROVIDER = OAuthProvider(
    client_id="id",
    client_secret="secret",
    authorization_endpoint="https://auth.invalid/authorize",
    token_endpoint="https://auth.invalid/token",
    redirect_url="http://localhost/oauth_callback",
)


async def login_main(page: ft.Page) -> None:
    shown = ft.Text("")

    async def open_url(url: str) -> None:  # instead of a popup in a browser
        shown.value = url
        shown.update()

    async def on_login(e: ft.LoginEvent) -> None:
        shown.value = f"login:{e.error}"
        shown.update()

    async def login(e: ft.Event[ft.Button]) -> None:
        await page.login(PROVIDER, fetch_user=False, on_open_authorization_url=open_url)

    page.on_login = on_login
    page.add(shown, ft.Button("login", on_click=login))


@pytest.mark.redis
async def test_a_callback_on_another_worker_completes_the_sign_in_in_the_sessions_worker(
    redis_server: RedisServer,
) -> None:
    workers = []
    for _ in range(2):
        app = Quart(__name__)
        app.config["SECRET_KEY"] = KEY
        app.register_blueprint(flet_blueprint(login_main, redis_url=redis_server.url))
        workers.append(app)
    async with contextlib.AsyncExitStack() as stack:
        worker_a, worker_b = [await stack.enter_async_context(w.test_app()) for w in workers]
        client = FletTestClient(
            await stack.enter_async_context(worker_a.test_client().websocket("/ws"))
        )
        await client.register()
        patch = await client.receive_until(lambda m: m[0] == 2 and "Button" in str(m))
        await client.click(find_controls(patch, _c="Button")[0]["_i"])
        url_patch = await client.receive_until(
            lambda m: m[0] == 2 and "auth.invalid/authorize" in str(m)
        )
        url = next(v for v in _strings(url_patch) if "auth.invalid/authorize" in v)
        state = parse_qs(urlparse(url).query)["state"][0]
        key = f"{OAUTH_KEY_PREFIX}flet:state:{state}"
        redis = aioredis.Redis.from_url(redis_server.url)
        try:
            deadline = asyncio.get_running_loop().time() + 5
            while not await redis.exists(key):  # page.login() stores it in a task
                assert asyncio.get_running_loop().time() < deadline, "state never reached Redis"
                await asyncio.sleep(0.02)
        finally:
            await redis.aclose()

        # the provider sends the browser back to worker B, which never saw the session
        response = await worker_b.test_client().get(
            "/oauth_callback", query_string={"state": state, "error": "access_denied"}
        )
        assert response.status_code == 200, await response.get_data(as_text=True)
        # ... and worker A completes the sign-in in the session it holds
        await client.patch_with("login:access_denied")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, (list, tuple)):
        return [s for v in node for s in _strings(v)]
    return []


class RunsCode:
    """Unpickling this makes a directory: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (os.mkdir, (str(self.path),))


@pytest.mark.redis
async def test_a_forged_or_foreign_message_on_redis_is_never_unpickled(
    redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pickles run code when loaded: only messages signed with the app's key
    are. One unsigned and one signed with another key are dropped, logged,
    and later messages still arrive."""
    workers = []
    for _ in range(2):
        app = Quart(__name__)
        app.register_blueprint(
            flet_blueprint(chat_main, redis_url=redis_server.url, secret_key=KEY)
        )
        workers.append(app)
    forger = aioredis.Redis.from_url(redis_server.url)
    marker = tmp_path / "code-ran"
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(forger.aclose)
        worker_a, worker_b = [await stack.enter_async_context(w.test_app()) for w in workers]
        a = await Chat.join(
            await stack.enter_async_context(worker_a.test_client().websocket("/ws"))
        )
        b = await Chat.join(
            await stack.enter_async_context(worker_b.test_client().websocket("/ws"))
        )
        await exercise_chat(a, b)
        payload = pickle.dumps((b"elsewhere", None, None, RunsCode(marker)))
        await forger.publish(channel_for("flet"), payload)  # unsigned
        other_key = Signer("flet", ["another deployment's key"])
        await forger.publish(channel_for("flet"), other_key.sign(payload))
        await b.send("all", "after-the-forgeries")  # Redis keeps the order
        await a.expect("all:after-the-forgeries")
    assert not marker.exists()
    # both forgeries reached A before the later message did (B may still be at them)
    assert caplog.text.count("signature does not match this app's secret key") >= 2
