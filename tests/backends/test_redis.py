"""Issue 6: pubsub across processes through a real redis-server, and what
happens when Redis restarts under live sessions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import redis.asyncio as aioredis
from apps.chat import main as chat_main
from apps.workers_shared import login_main
from conftest import (
    CONTROL_EVENT,
    PATCH_CONTROL,
    FletTestClient,
    decode,
    encode,
    find_controls,
    free_port,
    register_frame,
    require_service,
    wait_for_log,
)
from quart import Quart
from quart.testing.app import LifespanError
from test_pubsub import Chat, exercise_chat
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from quart_flet import PubSubNotPublished, flet_blueprint
from quart_flet.backends.redis import OAUTH_KEY_PREFIX, RedisOAuthStateStore, Signer, stream_for
from quart_flet.session.registry import get_registry

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
        wait_for_log(servers[0], "NOT published to Redis stream quart-flet:pubsub:flet")
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


@pytest.mark.redis
@pytest.mark.server
async def test_the_other_process_starts_on_a_send_while_the_senders_handlers_run(
    redis_server: RedisServer,
    hypercorn: Any,
) -> None:
    """A send to many async handlers reaches Redis before the sending
    process has run them all (the relay goes first, and the handlers run a
    slice per step of the loop), so the other process's sessions hear it
    alongside the sender's, not after them. Each handler holds its loop
    1.5 ms: 400 of them take 0.6 s, and Redis needs a few steps of the loop
    (a few slices) to take the message."""
    env = {"FLET_REDIS_URL": redis_server.url, "FLET_SECRET_KEY": KEY}
    busy, other = [hypercorn("tests.apps.busy_fanout:app", env=env) for _ in range(2)]
    async with contextlib.AsyncExitStack() as stack:

        async def join(server: Any) -> tuple[FletTestClient, int]:
            ws = await stack.enter_async_context(connect(server.url.replace("http", "ws") + "/ws"))
            client = FletTestClient(WebsocketsAdapter(ws))
            await client.register()
            patch = await client.receive_until(
                lambda m: m[0] == PATCH_CONTROL and find_controls(m[1], _c="Button")
            )
            return client, int(find_controls(patch, _c="Button")[0]["_i"])

        senders = [await join(busy) for _ in range(400)]
        listener, _ = await join(other)
        heard: dict[str, float] = {}

        async def hear(name: str, client: FletTestClient) -> None:
            await client.patch_with("got:ping", timeout=30)
            heard[name] = time.monotonic()

        clicked = time.monotonic()
        await senders[0][0].click(senders[0][1])
        await asyncio.gather(
            hear("other", listener), *(hear(f"busy{n}", c) for n, (c, _) in enumerate(senders))
        )
    last_busy = max(t for name, t in heard.items() if name != "other")
    # the other process is idle: it shows the message a few slices in
    assert heard["other"] < last_busy - 0.2, (heard["other"] - clicked, last_busy - clicked)
    for server in (busy, other):
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
        hub = get_registry(app).hub("flet")
        with pytest.raises(PubSubNotPublished, match="cannot pickle it"):
            await asyncio.wrap_future(hub.send_all(Unpicklable()))
        await a.expect("all:unpicklable")  # delivered here all the same
        with pytest.raises(PubSubNotPublished, match="Redis error"):
            await asyncio.wrap_future(hub.send_all_on_topic("room", "unreachable"))
        await b.expect("room:unreachable")
    assert "cannot pickle it" in caplog.text
    assert "is not reachable: serving anyway" in caplog.text
    assert "NOT published to Redis stream quart-flet:pubsub:flet" in caplog.text
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


@contextlib.asynccontextmanager
async def two_chat_workers(url: str) -> AsyncIterator[tuple[Any, Chat, Chat, aioredis.Redis]]:
    """Two in-process chat apps sharing the Redis at ``url`` (the first's
    test app is yielded), a chat session on each, and the test's own client
    of that Redis."""
    async with contextlib.AsyncExitStack() as stack:
        own = aioredis.Redis.from_url(url)
        stack.push_async_callback(own.aclose)
        test_apps = []
        for _ in range(2):
            app = Quart(__name__)
            app.register_blueprint(flet_blueprint(chat_main, redis_url=url, secret_key=KEY))
            test_apps.append(await stack.enter_async_context(app.test_app()))
        a, b = [
            await Chat.join(await stack.enter_async_context(t.test_client().websocket("/ws")))
            for t in test_apps
        ]
        yield test_apps[0], a, b, own


@pytest.mark.redis
async def test_a_forged_or_foreign_message_on_redis_is_never_unpickled(
    redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pickles run code when loaded: only messages signed with the app's key
    are. One unsigned and one signed with another key are dropped, logged,
    and later messages still arrive."""
    marker = tmp_path / "code-ran"
    async with two_chat_workers(redis_server.url) as (_, a, b, forger):
        await exercise_chat(a, b)
        payload = pickle.dumps((None, None, RunsCode(marker)))
        forged = {"o": b"elsewhere", "n": 1}
        await forger.xadd(stream_for("flet"), {**forged, "m": payload})  # unsigned
        other_key = Signer("flet", ["another deployment's key"])
        await forger.xadd(stream_for("flet"), {**forged, "m": other_key.sign(payload)})
        await b.send("all", "after-the-forgeries")  # Redis keeps the order
        await a.expect("all:after-the-forgeries")
    assert not marker.exists()
    # both forgeries reached A before the later message did (B may still be at them)
    assert caplog.text.count("signature does not match this app's secret key") >= 2


OUTAGE_SESSIONS = 200  # half on each server; the first on server A sends
SEND_INTERVAL = 0.1  # seconds between the sender's clicks
OUTAGE_SECONDS = 2.0  # how long Redis stays dead (the fault, not a wait for something)
SENT_AFTER_RESTART = 30  # clicks after Redis answers again


class FanoutSession:
    """One session of tests/apps/redis_fanout.py over a real WebSocket: the
    numbers of the messages it got, in arrival order, with arrival times, and
    (for the sender) each send's outcome."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.got: list[int] = []
        self.arrived: dict[int, float] = {}
        self.outcomes: dict[int, str] = {}
        self.button = 0
        self.reader: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, server_url: str) -> FanoutSession:
        session = cls(await connect(server_url.replace("http", "ws") + "/ws", max_size=None))
        await session.ws.send(register_frame())
        while not session.button:  # the first render comes after main subscribed
            message = decode(await asyncio.wait_for(session.ws.recv(), 30))
            buttons = find_controls(message, _c="Button") if message[0] == PATCH_CONTROL else []
            session.button = int(buttons[0]["_i"]) if buttons else 0
        session.reader = asyncio.create_task(session._read())
        return session

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.ws:
                now = time.monotonic()
                for text in _strings(decode(frame)):
                    kind, _, number = text.partition(":m")
                    if kind == "got" and number.isdigit():
                        self.got.append(int(number))
                        self.arrived.setdefault(int(number), now)
                    elif kind in ("published", "failed") and number.isdigit():
                        self.outcomes[int(number)] = kind

    async def click(self) -> None:
        await self.ws.send(encode(CONTROL_EVENT, {"target": self.button, "name": "click"}))

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader


async def _until(condition: Any, timeout: float) -> bool:
    """Bounded polling of the sessions' state, filled by their reader tasks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.redis
@pytest.mark.server
async def test_redis_killed_during_a_fanout_loses_nothing_silently_and_delivers_nothing_twice(
    redis_server: RedisServer,
    hypercorn: Any,  # servers stop before Redis does
) -> None:
    """Redis dies for 2 s under a fan-out from server A to 200 sessions on two
    servers, then comes back. Each message A could not append is logged and
    its sender told (failed:mN); every other one reaches all 200 sessions,
    once each and in order, including those sent before server B was reading
    again. Run with -s to see how long delivery took to resume."""
    env = {"FLET_REDIS_URL": redis_server.url, "FLET_SECRET_KEY": KEY}
    server_a, server_b = [hypercorn("tests.apps.redis_fanout:app", env=env) for _ in range(2)]
    half = OUTAGE_SESSIONS // 2
    gate = asyncio.Semaphore(20)

    async def join(url: str) -> FanoutSession:
        async with gate:
            return await FanoutSession.join(url)

    on_a = await asyncio.gather(*(join(server_a.url) for _ in range(half)))
    on_b = await asyncio.gather(*(join(server_b.url) for _ in range(half)))
    sender, sessions = on_a[0], [*on_a, *on_b]
    clicked: dict[int, float] = {}
    stop_sending = asyncio.Event()

    async def send_forever() -> None:
        while not stop_sending.is_set():
            await sender.click()
            clicked[len(clicked) + 1] = time.monotonic()
            await asyncio.sleep(SEND_INTERVAL)  # the send rate, not synchronisation

    sending = asyncio.create_task(send_forever())
    try:
        assert await _until(lambda: len(on_b[-1].got) >= 10, 30), "no fan-out before the fault"
        redis_server.kill()
        await asyncio.to_thread(wait_for_log, server_a, "NOT published to Redis stream")
        await asyncio.to_thread(wait_for_log, server_b, "Redis pubsub connection to")
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
        await asyncio.to_thread(redis_server.start)
        back_at, sent_before_back = time.monotonic(), len(clicked)
        assert await _until(lambda: len(clicked) >= sent_before_back + SENT_AFTER_RESTART, 30)
    finally:
        stop_sending.set()
        await sending
    sent = set(clicked)
    assert await _until(lambda: set(sender.outcomes) >= sent, 30), "a send never learned its fate"
    failed = {n for n, outcome in sender.outcomes.items() if outcome == "failed"}
    published = sent - failed
    logged = {int(n) for n in re.findall(r"message='m(\d+)'", server_a.log())}
    assert failed and published, sender.outcomes
    assert logged == failed, "the sender's outcomes and server A's log disagree"
    # no fixed wait: until A's sessions have every message and B's every published one, or 60 s
    await _until(
        lambda: (
            all(sent <= set(s.got) for s in on_a) and all(published <= set(s.got) for s in on_b)
        ),
        60,
    )
    for session in sessions:
        await session.close()

    after_restart = {n for n in published if clicked[n] > back_at}
    missing = {n for s in on_b for n in published - set(s.got)}
    missing_after_restart = sorted(missing & after_restart)
    assert not missing_after_restart, (
        f"{len(missing_after_restart)} messages published by server A after Redis was back "
        f"reached none or only some of server B's sessions, and no log says so: "
        f"{missing_after_restart}"
    )
    assert not missing, f"published but never delivered to server B: {sorted(missing)}"
    for session in on_a:
        assert session.got == sorted(sent), "server A's own sessions get every send, in order"
    for session in on_b:
        assert session.got == sorted(published), "in order, once each, and nothing that failed"
    resumed = min(min(s.arrived[n] for n in after_restart) for s in on_b) - back_at
    worst = max(s.arrived[n] - clicked[n] for s in on_b for n in after_restart)
    print(
        f"\nRedis outage: {len(failed)} of {len(sent)} sends failed (logged, sender told), "
        f"{len(published)} delivered to all {OUTAGE_SESSIONS} sessions; server B's sessions "
        f"got the first message sent after the restart {resumed:.2f} s after Redis answered, "
        f"and each message sent after it within {worst:.2f} s"
    )
    # and server B says how many of A's messages its sessions missed
    gaps = re.findall(r"(\d+) pubsub message\(s\) of process \w+ on", server_b.log())
    assert sum(map(int, gaps)) == len(failed), server_b.log()
    for server in (server_a, server_b):
        assert "Traceback" not in server.log(), server.log()


@pytest.mark.redis
async def test_an_entry_appended_twice_is_delivered_once_and_a_missing_one_is_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A retried XADD that had gone through leaves the same message twice in
    the stream: readers drop the second. A number that never arrives (trimmed,
    or lost with Redis) is logged by the reader whose sessions missed it."""
    signer = Signer("flet", [KEY])
    async with two_chat_workers(redis_server.url) as (worker_a, a, b, writer):

        async def append(number: int, text: str) -> None:
            frame = signer.sign(pickle.dumps((None, None, text)))
            await writer.xadd(stream_for("flet"), {"o": b"another", "n": number, "m": frame})

        sent = get_registry(worker_a.app).hub("flet").send_all("published")
        assert await asyncio.wrap_future(sent) is None  # Redis took it
        await b.expect("all:published")

        await append(1, "one")
        await append(1, "one-again")  # the same number again: a retried append
        await append(3, "three")  # number 2 never came
        await b.expect("all:three")
        await a.expect("all:three")
        assert b.saw("all:one") and not b.saw("all:one-again")
    assert caplog.text.count("read again from Redis stream quart-flet:pubsub:flet") == 2
    assert caplog.text.count("1 pubsub message(s) of process 616e6f74686572") == 2


async def test_a_send_still_waiting_for_redis_when_the_server_stops_is_reported_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis that accepts connections and never answers: the send waits in
    the publisher; stopping the server fails its Publication and logs it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts; nobody ever reads
        port = silent.getsockname()[1]
        app = Quart(__name__)
        app.register_blueprint(
            flet_blueprint(chat_main, redis_url=f"redis://127.0.0.1:{port}", secret_key=KEY)
        )
        async with app.test_app():
            sent = get_registry(app).hub("flet").send_all("never-answered")
            assert not sent.done()
        with pytest.raises(PubSubNotPublished, match="stopped"):
            sent.result(timeout=0)
    assert "message='never-answered'" in caplog.text
