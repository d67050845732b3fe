"""SIGTERM with sessions connected: Hypercorn exits within its graceful
timeout plus a second, the sessions' clients are told the server is going
away, temporary files (the registry's temp_dir) are gone and the log is
clean. A real subprocess, with a registered session and a socket that never
registered.

Both with ``--workers 0`` (Hypercorn serves in the process that gets the
signal) and with worker processes, which Hypercorn's parent stops through an
event: quart_flet.asgi.shutdown watches Hypercorn's own shutdown trigger. Then the
parent ``terminate()``s the workers still running once the first has exited;
"group" sends SIGTERM to the parent and every worker at once (systemd, ``kill
-- -PGID``), which is what a busy worker gets then: without quart_flet holding
SIGTERM in workers, those die mid-shutdown (1006, temp files left)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REGISTER_CLIENT, decode, register_frame, wait_for_log
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.server

GRACEFUL_TIMEOUT = 3


def workers_of(pid: int) -> list[int]:
    """Hypercorn's worker processes (not multiprocessing's resource tracker)."""
    pids = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in pids if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


@pytest.mark.parametrize(
    ("workers", "group", "worker_class"),
    [
        ("0", False, "asyncio"),
        ("2", False, "asyncio"),
        ("2", True, "asyncio"),
        ("2", True, "uvloop"),  # the Procfile's worker class
        # the Procfile's pings: Hypercorn's ping loop held each socket (and the
        # stop) for up to the ping interval, then a traceback
        ("0", False, "uvloop --websocket-ping-interval 20 --read-timeout 60"),
    ],
)
async def test_sigterm_with_live_sessions_exits_cleanly(
    hypercorn: Any, tmp_path: Path, workers: str, group: bool, worker_class: str
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = hypercorn(
        "examples.counter:app",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        "--workers",
        workers,
        "--worker-class",
        *worker_class.split(),
        env={"TMPDIR": str(temp)},
    )
    wait_for_log(server, "Running on", max(int(workers), 1))  # every worker serving
    assert [p.name for p in temp.iterdir() if p.name.startswith("quart_flet_")]
    ws_url = server.url.replace("http", "ws") + "/ws"
    registered = []
    for _ in range(2):
        ws = await connect(ws_url)
        await ws.send(register_frame())
        assert decode(await ws.recv())[0] == REGISTER_CLIENT
        registered.append(ws)
    idle = await connect(ws_url)  # open, never registered (uvicorn hangs on these)

    started = time.monotonic()
    workers_pids = workers_of(server.proc.pid) if group else []
    assert len(workers_pids) == (2 if group else 0)
    server.proc.send_signal(signal.SIGTERM)
    for pid in workers_pids:
        os.kill(pid, signal.SIGTERM)
    returncode = await asyncio.to_thread(server.proc.wait, GRACEFUL_TIMEOUT + 5)
    elapsed = time.monotonic() - started

    codes = []
    for ws in [*registered, idle]:
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        codes.append(ws.close_code)
    log = server.log()
    assert returncode == 0, log
    assert elapsed <= GRACEFUL_TIMEOUT + 1, (elapsed, log)
    assert codes == [1001, 1001, 1001], (codes, log)  # going away, at once: clients reconnect
    assert not [p.name for p in temp.iterdir() if p.name.startswith("quart_flet_")]
    for bad in ("Task was destroyed", "Traceback", "Exception in", "ERROR"):
        assert bad not in log, log


async def test_sigterm_to_one_worker_alone_still_kills_it(hypercorn: Any) -> None:
    """Holding SIGTERM must not make a worker unkillable: with no shutdown
    under way it dies of the signal after a short grace, as it did before."""
    from quart_flet.asgi.shutdown import SIGTERM_GRACE

    server = hypercorn("examples.counter:app", "--workers", "2")
    wait_for_log(server, "Running on", 2)
    worker = workers_of(server.proc.pid)[0]
    pidfd = os.pidfd_open(worker)
    try:
        os.kill(worker, signal.SIGTERM)
        started = time.monotonic()
        ready, _, _ = await asyncio.to_thread(select.select, [pidfd], [], [], SIGTERM_GRACE + 5)
        assert ready, "the worker is still alive"
        assert time.monotonic() - started >= SIGTERM_GRACE * 0.9
    finally:
        os.close(pidfd)
    assert "SIGTERM to this worker alone" in server.log()


async def test_no_hypercorn_trigger_found_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not served by Hypercorn (or a Hypercorn upgrade renamed its trigger):
    say so where people look, as the fast close then does not happen."""
    import logging

    from quart_flet.asgi import shutdown

    monkeypatch.setattr(shutdown, "_LOOK_FOR", 0.1)
    loop = asyncio.get_running_loop()
    warned = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "no Hypercorn shutdown trigger" in record.getMessage():
                warned.set()

    handler = Seen(logging.WARNING)
    logging.getLogger("quart_flet").addHandler(handler)
    try:
        stop = shutdown.on_server_shutdown(loop, lambda: None)
        await asyncio.wait_for(warned.wait(), 10)
        stop()
    finally:
        logging.getLogger("quart_flet").removeHandler(handler)


async def test_a_stop_right_after_the_start_still_closes_flet_sockets_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop that comes before quart-flet's next look (here: looks a second
    apart) is seen all the same: the next look finds Hypercorn already
    stopping and closes the Flet WebSocket with 1001 at once. (Watching the
    trigger tasks instead missed it when they came and went between looks,
    so a socket held the stop for the graceful timeout, then a traceback.)"""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from examples.counter import app
    from quart_flet.asgi import shutdown

    monkeypatch.setattr(shutdown, "_LOOK_EVERY", 1.0)
    listening = socket.create_server(("127.0.0.1", 0))  # clients wait in its backlog
    port = listening.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listening.detach()}"]  # Hypercorn's to close
    config.graceful_timeout = 20
    registered = asyncio.Event()

    async def trigger() -> None:
        await registered.wait()

    server = asyncio.create_task(serve(app, config, shutdown_trigger=trigger))
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            await ws.send(register_frame())
            while decode(await ws.recv())[0] != REGISTER_CLIENT:
                pass
            registered.set()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        await asyncio.wait_for(server, 10)
        assert time.monotonic() - started < 5  # not the graceful timeout
    finally:
        server.cancel()


async def test_two_hypercorn_servers_on_one_loop_each_close_their_own_flet_sockets() -> None:
    """Two apps, each served by its own ``hypercorn.asyncio.serve`` on the same
    loop (a public app and an admin app, say): stopping one closes its own
    Flet sockets with 1001 at once and leaves the other's open. (Taking the
    first Hypercorn worker found on the loop gave both apps the same one: one
    app's sockets closed when the other server stopped, and the other held
    its stop for the graceful timeout.)"""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from quart_flet import quart_app

    def main(page: Any) -> None:
        page.add()

    triggers = [asyncio.Event(), asyncio.Event()]
    ports, servers = [], []
    for trigger in triggers:
        listening = socket.create_server(("127.0.0.1", 0))
        ports.append(listening.getsockname()[1])
        config = Config()
        config.bind = [f"fd://{listening.detach()}"]
        config.graceful_timeout = 20
        servers.append(
            asyncio.create_task(serve(quart_app(main), config, shutdown_trigger=trigger.wait))
        )

    async def registered(port: int) -> Any:
        ws = await connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10)
        await ws.send(register_frame())
        while decode(await ws.recv())[0] != REGISTER_CLIENT:
            pass
        return ws

    try:
        first, second = [await registered(port) for port in ports]
        for index, (ws, other) in enumerate(((first, second), (second, first))):
            triggers[index].set()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            await asyncio.wait_for(servers[index], 10)
            assert time.monotonic() - started < 5  # not the graceful timeout
            if index == 0:  # the other server's session still answers
                await other.ping()
                assert other.close_code is None, other.close_code
    finally:
        for server in servers:
            server.cancel()
