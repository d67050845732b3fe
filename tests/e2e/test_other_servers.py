"""Other ASGI servers: a real uvicorn and a real Granian serve a quart-flet
app (the client, the Flet WebSocket, streamed uploads) and stop it on
SIGTERM with its after_serving run; Daphne, which runs no ASGI lifespan,
gets a clear 503 instead of a half-started app."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import REGISTER_CLIENT, ROOT, decode, free_port, register_frame, require_service
from test_uploads import SECRET, signed_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.server
MiB = 1024 * 1024


COMMANDS = {
    "uvicorn": lambda app, port: ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", port],
    "granian": lambda app, port: [
        *("-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", port, app)
    ],
    "daphne": lambda app, port: ["-m", "daphne", "-b", "127.0.0.1", "-p", port, app],
}


@contextmanager
def asgi_server(
    app: str, tmp_path: Path, env: dict[str, str], server: str = "uvicorn"
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """``server`` (uvicorn by default) serving ``app`` on a free port."""
    require_service(
        server, importlib.util.find_spec(server) is not None, "pip install -e '.[test]'"
    )
    port = free_port()
    log = tmp_path / f"{server}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *COMMANDS[server](app, str(port))],
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
            except urllib.error.HTTPError:
                break  # it answers (Daphne's 503)
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


async def count_then_sigterm(
    url: str, proc: subprocess.Popen[bytes], temp: Path
) -> tuple[int | None, float]:
    """The counter's page and WebSocket on a real server, then SIGTERM while
    the session is live; returns the close code the client got and when the
    signal was sent."""
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
        return ws.close_code, stopping


async def test_uvicorn_serves_the_websocket_and_stops_gracefully(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with asgi_server("examples.counter:app", tmp_path, {"TMPDIR": str(temp)}) as (url, log, proc):
        code, stopping = await count_then_sigterm(url, proc, temp)
        assert code == 1012  # uvicorn's "service restart": the client reconnects
        deadline = time.monotonic() + 10
        while "Application shutdown complete" not in log.read_text():  # bounded polling
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert time.monotonic() - stopping < 5
    assert not list(temp.iterdir())  # after_serving ran: temp files removed
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_large_upload_is_streamed(tmp_path: Path, server: str) -> None:
    upload_dir = tmp_path / "uploads"
    env = {"FLET_UPLOAD_DIR": str(upload_dir), "FLET_SECRET_KEY": SECRET}
    with asgi_server("examples.upload:app", tmp_path, env, server) as (url, _, _proc):
        chunk, count = os.urandom(MiB), 20  # above Quart's 16 MiB MAX_CONTENT_LENGTH
        response = httpx.put(
            url + signed_url("big.bin"),
            content=(chunk for _ in range(count)),
            headers={"content-length": str(count * MiB)},
            timeout=60,
        )
        assert response.status_code == 200, response.text
    assert (upload_dir / "big.bin").stat().st_size == count * MiB


async def test_granian_serves_the_websocket_and_runs_after_serving_on_sigterm(
    tmp_path: Path,
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    with asgi_server("examples.counter:app", tmp_path, env, "granian") as (url, log, proc):
        await count_then_sigterm(url, proc, temp)
        assert proc.wait(15) == 0
    assert not list(temp.iterdir())  # after_serving ran: temp files removed
    assert "Traceback" not in log.read_text(), log.read_text()


async def test_daphne_runs_no_lifespan_and_gets_a_clear_503(tmp_path: Path) -> None:
    """Daphne serves no quart-flet app: it runs no ASGI lifespan (so the page
    is a 503 saying so), and Quart itself cannot open a WebSocket from
    Daphne's scope, which has no "scheme" (refused before any session)."""
    with asgi_server("examples.counter:app", tmp_path, {}, "daphne") as (url, log, _proc):
        page = httpx.get(url + "/", timeout=10)
        assert page.status_code == 503
        assert "did not run the ASGI lifespan" in page.json()["error"]
        with pytest.raises(Exception, match="rejected WebSocket connection"):
            async with connect(url.replace("http", "ws", 1) + "/ws"):
                pass
    assert "KeyError: 'scheme'" in log.read_text()  # in Quart's asgi.py, not ours
