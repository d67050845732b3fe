"""Other ASGI servers: a real uvicorn serves a quart-flet app (the client,
the Flet WebSocket, streamed uploads) and stops it gracefully on SIGTERM.
(Daphne and Granian are not installed here: untested, see the README.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import REGISTER_CLIENT, ROOT, decode, free_port, register_frame
from test_uploads import SECRET, signed_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.server
MiB = 1024 * 1024


@contextmanager
def uvicorn(
    app: str, tmp_path: Path, env: dict[str, str]
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    pytest.importorskip("uvicorn")
    port = free_port()
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded polling until the port answers
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield url, log, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_uvicorn_serves_the_websocket_and_stops_gracefully(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with uvicorn("examples.counter:app", tmp_path, {"TMPDIR": str(temp)}) as (url, log, proc):
        index = urllib.request.urlopen(url + "/", timeout=5).read()
        assert b'flet.webSocketEndpoint="/ws"' in index
        async with connect(url.replace("http", "ws", 1) + "/ws") as ws:
            await ws.send(register_frame())
            messages = [decode(await ws.recv()) for _ in range(2)]
            assert messages[0][0] == REGISTER_CLIENT and "Counter:" in str(messages[1])
            assert list(temp.iterdir())  # the registry's temp_dir
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1012  # uvicorn's "service restart": the client reconnects
        deadline = time.monotonic() + 10
        while "Application shutdown complete" not in log.read_text():  # bounded polling
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert time.monotonic() - stopping < 5
    assert not list(temp.iterdir())  # after_serving ran: temp files removed
    assert "Traceback" not in log.read_text(), log.read_text()


def test_uvicorn_streams_a_large_upload(tmp_path: Path) -> None:
    upload_dir = tmp_path / "uploads"
    env = {"FLET_UPLOAD_DIR": str(upload_dir), "FLET_SECRET_KEY": SECRET}
    with uvicorn("examples.upload:app", tmp_path, env) as (url, _, _proc):
        chunk, count = os.urandom(MiB), 20  # above Quart's 16 MiB MAX_CONTENT_LENGTH
        response = httpx.put(
            url + signed_url("big.bin"),
            content=(chunk for _ in range(count)),
            headers={"content-length": str(count * MiB)},
            timeout=60,
        )
        assert response.status_code == 200, response.text
    assert (upload_dir / "big.bin").stat().st_size == count * MiB
