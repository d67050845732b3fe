"""SIGTERM with sessions connected: Hypercorn exits within its graceful
timeout plus a second, the sessions' clients are told the server is going
away, temporary files (the registry's temp_dir) are gone and the log is
clean. A real subprocess, with a registered session and a socket that never
registered.

Both with ``--workers 0`` (Hypercorn serves in the process that gets the
signal) and with worker processes, which Hypercorn's parent stops through an
event: quart_flet.shutdown watches Hypercorn's own shutdown trigger."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REGISTER_CLIENT, decode, register_frame
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.server

GRACEFUL_TIMEOUT = 3


@pytest.mark.parametrize("workers", ["0", "2"])
async def test_sigterm_with_live_sessions_exits_cleanly(
    hypercorn: Any, tmp_path: Path, workers: str
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    server = hypercorn(
        "examples.counter:app",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
        "--workers",
        workers,
        env={"TMPDIR": str(temp)},
    )
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
    server.proc.send_signal(signal.SIGTERM)
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
    assert codes == [1001, 1001, 1001], codes  # going away, at once: clients reconnect
    assert not [p.name for p in temp.iterdir() if p.name.startswith("quart_flet_")]
    for bad in ("Task was destroyed", "Traceback", "Exception in", "ERROR"):
        assert bad not in log, log
