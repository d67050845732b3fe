"""The Procfile's web command, run the way Heroku-style platforms run it: by
a shell, with PORT in the environment, stopped with SIGTERM to the process
group. The app it serves must load and count."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from conftest import (
    REGISTER_CLIENT,
    ROOT,
    FletTestClient,
    WebsocketsSocket,
    free_port,
    register_frame,
    shell_server,
)
from websockets.asyncio.client import connect

pytestmark = pytest.mark.server


def web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web process")


async def test_procfile_web_command_serves_the_app(tmp_path: Path) -> None:
    port = free_port()
    with shell_server(web_command(), port, tmp_path, {"PORT": str(port)}) as url:
        index = urllib.request.urlopen(url + "/", timeout=5).read()
        assert b'<base href="/">' in index
        async with connect(url.replace("http", "ws") + "/ws") as ws:
            client = FletTestClient(WebsocketsSocket(ws))
            await ws.send(register_frame())
            await client.receive_until(lambda m: m[0] == REGISTER_CLIENT)
            await client.patch_with("Counter:")  # main ran and rendered
