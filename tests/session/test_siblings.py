"""Issue 24: with ``--workers N`` and no Redis, pubsub reaches the sessions
of every worker, and an OAuth callback that lands on any worker completes
the sign-in in the worker holding its session (quart_flet.session.siblings)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from conftest import PATCH_CONTROL, FletTestClient, WebsocketsSocket, find_controls, wait_for_log
from test_pubsub import Chat, exercise_chat
from websockets.asyncio.client import connect

from quart_flet.session.filestore import FileStore

APP = "tests.apps.workers_shared:app"


async def pid_of(client: FletTestClient) -> int:
    """The pid of the worker holding the session (its page shows it)."""
    if not find_controls(client.messages, key="pid"):
        await client.receive_until(lambda m: m[0] == PATCH_CONTROL and find_controls(m, key="pid"))
    return int(find_controls(client.messages, key="pid")[0]["value"].removeprefix("pid:"))


async def chats_on_both_workers(url: str, sockets: list[Any]) -> tuple[Chat, Chat]:
    """A chat session on each of two workers (the kernel picks the worker:
    open sessions until both have one); every socket opened goes to ``sockets``."""
    chats: dict[int, Chat] = {}
    while len(chats) < 2:
        assert len(sockets) < 40, "every session landed on one worker"
        ws = await connect(url.replace("http", "ws") + "/ws")
        sockets.append(ws)
        chat = await Chat.join(WebsocketsSocket(ws))
        chats.setdefault(await pid_of(chat.client), chat)
    a, b = chats.values()
    return a, b


@pytest.mark.server
async def test_pubsub_reaches_the_sessions_of_every_worker(hypercorn: Any) -> None:
    server = hypercorn(APP, "--workers", "2")
    wait_for_log(server, "Running on", 2)
    sockets: list[Any] = []
    try:
        a, b = await chats_on_both_workers(server.url, sockets)
        await exercise_chat(a, b)
        await exercise_chat(b, a, "-back")
    finally:
        for ws in sockets:
            await ws.close()
    assert "NOT sent" not in server.log()
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.server
async def test_an_oauth_callback_on_any_worker_signs_in_the_session_where_it_lives(
    hypercorn: Any,
) -> None:
    server = hypercorn(APP, "--workers", "2")
    wait_for_log(server, "Running on", 2)
    crossed = 0
    for _ in range(20):
        # a connection of its own each time: the kernel picks the worker anew
        async with httpx.AsyncClient(base_url=server.url) as http:
            async with connect(server.url.replace("http", "ws") + "/login/ws") as ws:
                client = FletTestClient(WebsocketsSocket(ws))
                await client.register()
                holder = await pid_of(client)
                (button,) = find_controls(client.messages, _c="Button")
                await client.click(int(button["_i"]))
                shown = await client.receive_until(
                    lambda m: m[0] == PATCH_CONTROL and "auth.invalid/authorize" in str(m)
                )
                url = next(s for s in strings(shown) if "auth.invalid/authorize" in s)
                state = parse_qs(urlparse(url).query)["state"][0]
                # the provider sends the browser back; the kernel picks the worker
                callback = await state_callback(http, state)
                assert callback.status_code == 200, callback.text
                await client.patch_with("login:access_denied")
                crossed += int(callback.headers["X-Worker"]) != holder
            if crossed:
                break
    assert crossed, "no callback landed on the other worker: nothing was tested"
    assert "Traceback" not in server.log(), server.log()


async def state_callback(http: httpx.AsyncClient, state: str) -> httpx.Response:
    """The provider's redirect back, once page.login() stored the state (it
    does so in a task: bounded polling while the callback says it is unknown)."""
    deadline = time.monotonic() + 10
    while True:
        response = await http.get(
            "/login/oauth_callback", params={"state": state, "error": "access_denied"}
        )
        if response.status_code != 400 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, (list, tuple)):
        return [s for v in node for s in strings(v)]
    return []


async def test_oauth_states_in_the_workers_directory_are_taken_once_and_expire(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "oauth"
    worker_a, worker_b = FileStore(directory), FileStore(directory)
    await worker_a.put("app:state:s1", "pending", ttl=60)
    assert await worker_b.take("app:state:s1") == "pending"
    assert await worker_a.take("app:state:s1") is None  # once only
    await worker_a.put("app:state:s2", "short", ttl=-1)  # expired already
    assert await worker_b.take("app:state:s2") is None
    await worker_a.put("app:state:s3", "abandoned", ttl=-1)
    await worker_b.put("app:state:s4", "next", ttl=60)  # drops the expired
    # one state left (s4), the user's alone, in the user's own directory
    assert [path.stat().st_mode & 0o777 for path in directory.iterdir()] == [0o600]
    assert directory.stat().st_mode & 0o777 == 0o700
    assert await worker_a.take("app:state:s4") == "next"


@pytest.mark.server
async def test_a_process_of_the_same_user_that_is_no_worker_hears_nothing(
    hypercorn: Any, tmp_path: Path
) -> None:
    """Not even one that puts a socket of its own in the workers' directory
    (they connect to it and find it is no sibling) or copies a request (a
    worker reads nothing from a process that is not its parent's child)."""
    import msgpack

    server = hypercorn(APP, "--workers", "2", env={"TMPDIR": str(tmp_path)})
    wait_for_log(server, "Running on", 2)
    (directory,) = [
        d
        for base in (tmp_path, Path("/tmp"))
        for d in base.glob(f"quart-flet-{os.getuid()}/workers-{server.proc.pid}-*")
    ]
    heard: list[bytes] = []

    async def squat(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):  # a worker hangs up on it
            heard.append(await reader.read())
        writer.close()

    squatter = await asyncio.start_unix_server(squat, path=str(directory / "1.sock"))
    try:
        sockets: list[Any] = []
        a, b = await chats_on_both_workers(server.url, sockets)
        await exercise_chat(a, b)  # pubsub still crosses, not through the squatter
        for ws in sockets:
            await ws.close()
        # a request sent straight to a worker's socket is never read
        worker = next(path for path in directory.glob("*.sock") if path.stem != "1")
        reader, writer = await asyncio.open_unix_connection(str(worker))
        hello = msgpack.packb(["bus", {"worker": 1}, b"\0" * 32])
        writer.write(len(hello).to_bytes(4, "big") + hello)
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:  # closed with the request unread
            answer = b""
        assert answer == b""
        writer.close()
    finally:
        squatter.close()
    assert b"".join(heard) == b""
    wait_for_log(server, "not a worker of this server")
    assert "Traceback" not in server.log(), server.log()
