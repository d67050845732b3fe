"""The Procfile's web command, run the way Heroku-style platforms run it: by
a shell, with PORT in the environment, stopped with SIGTERM to the process
group. The app it serves must load and count."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import REGISTER_CLIENT, ROOT, FletTestClient, free_port, register_frame
from websockets.asyncio.client import connect

pytestmark = pytest.mark.server


def web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web process")


class _Socket:
    """The conftest Flet client over a real websockets connection."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def receive(self) -> bytes:
        data: bytes = await self.ws.recv()
        return data


async def test_procfile_web_command_serves_the_app(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:
        shell = subprocess.Popen(
            ["/bin/sh", "-c", web_command()],
            cwd=ROOT,
            env={**os.environ, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # bounded polling until the port answers
            try:
                index = urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                assert shell.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        assert b'<base href="/">' in index
        async with connect(url.replace("http", "ws") + "/ws") as ws:
            client = FletTestClient(_Socket(ws))
            await ws.send(register_frame())
            await client.receive_until(lambda m: m[0] == REGISTER_CLIENT)
            await client.patch_with("Counter:")  # main ran and rendered
    finally:
        os.killpg(shell.pid, signal.SIGTERM)  # as the platform stops a dyno
        shell.wait(10)  # the shell itself dies of the signal
    deadline = time.monotonic() + 6  # the command's --graceful-timeout, plus a second
    while group_alive(shell.pid):  # bounded polling until Hypercorn is gone too
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    assert "Traceback" not in log_path.read_text()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
