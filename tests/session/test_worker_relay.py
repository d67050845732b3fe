"""Issue 24: with ``--workers N`` on one port, a reconnect that the kernel
hands to a worker that does not hold its session is relayed to the one that
does, and resumes with its state, as on one worker."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PATCH_CONTROL, FletTestClient, find_controls, wait_for_log
from test_redis import WebsocketsAdapter
from test_sticky import LOG_CONFIG
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin


class Tab:
    """One browser tab talking to the server directly (no balancer)."""

    def __init__(self, url: str, cookies: dict[str, str]) -> None:
        self.url = url
        self.cookies = cookies
        self.ws: ClientConnection | None = None
        self.client: FletTestClient | None = None
        self.session_id = ""
        self.pid = 0
        self.counter = ""
        self.fab = 0

    async def open(self, session_id: str | None = None) -> None:
        self.ws = await connect(
            self.url.replace("http", "ws") + "/ws",
            origin=Origin(self.url),
            additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())},
            max_size=None,
        )
        self.client = FletTestClient(WebsocketsAdapter(self.ws))
        reply = await self.client.register(session_id)
        if not find_controls(reply, key="pid"):  # a new session: main adds it last
            await self.client.receive_until(
                lambda m: m[0] == PATCH_CONTROL and bool(find_controls(m, key="pid"))
            )
        assert self.client.session_id
        self.session_id = self.client.session_id
        render = self.client.messages
        self.pid = int(find_controls(render, key="pid")[0]["value"].removeprefix("pid:"))
        self.counter = find_controls(render, key="counter")[-1]["value"]
        self.fab = find_controls(render, _c="FloatingActionButton")[-1]["_i"]

    async def click(self, expect: str) -> None:
        assert self.client is not None
        await self.client.click(self.fab)
        await self.client.patch_with(expect)
        self.counter = expect

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


async def new_tab(url: str) -> Tab:
    """A browser that loaded the page first: it has its browser id cookie."""
    async with httpx.AsyncClient(base_url=url) as http:
        index = await http.get("/")
    assert index.status_code == 200
    return Tab(url, dict(index.cookies))


@pytest.mark.server
async def test_every_reconnect_resumes_its_session_whichever_worker_it_lands_on(
    hypercorn: Any, tmp_path: Path
) -> None:
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    server = hypercorn(
        "tests.apps.sticky:app", "--workers", "2", "--log-config", f"json:{log_config}"
    )
    tabs = [await new_tab(server.url) for _ in range(8)]
    for tab in tabs:
        await tab.open()
        await tab.click("1")
    holders = {tab.session_id: tab.pid for tab in tabs}
    assert len(set(holders.values())) == 2, "both workers hold sessions"

    disconnects = 0
    for round_ in range(3):
        for tab in tabs:
            await tab.close()
        disconnects += len(tabs)
        for tab in tabs:
            wait_for_log(server, f"session {tab.session_id} disconnected", count=round_ + 1)
        for tab in tabs:
            before = tab.session_id
            await tab.open(before)
            # the same session, on the worker that made it, with its count
            assert tab.session_id == before
            assert tab.pid == holders[before]
            assert tab.counter == str(round_ + 1)
            await tab.click(str(round_ + 2))  # and it answers through the relay
    relayed = server.log().count("lives in another worker: relayed")
    assert relayed >= 1, "no reconnect landed on the other worker: nothing was tested"
    assert "starting a new one" not in server.log()
    assert "Traceback" not in server.log()
    for tab in tabs:
        await tab.close()


@pytest.mark.server
async def test_another_browser_never_gets_a_session_through_the_relay(
    hypercorn: Any, tmp_path: Path
) -> None:
    """The worker holding a session checks the browser's real cookies, so a
    session id without its browser's cookie starts a new session wherever
    it lands; the owner still resumes it. The workers' sockets are the
    user's alone."""
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    server = hypercorn(
        "tests.apps.sticky:app", "--workers", "2", "--log-config", f"json:{log_config}"
    )
    owner = await new_tab(server.url)
    await owner.open()
    await owner.click("1")
    await owner.close()
    wait_for_log(server, f"session {owner.session_id} disconnected")

    for _ in range(6):
        thief = await new_tab(server.url)  # a browser id of its own
        await thief.open(owner.session_id)
        assert thief.session_id != owner.session_id
        assert thief.counter == "0"
        await thief.close()

    await owner.open(owner.session_id)
    assert owner.counter == "1"
    await owner.close()
    assert "Traceback" not in server.log()

    directory = Path(tempfile.gettempdir()) / f"quart-flet-{os.getuid()}"
    (workers,) = directory.glob(f"workers-{server.proc.pid}-*")  # its pid namespace, its start
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(workers.stat().st_mode) == 0o700
    sockets = list(workers.glob("*.sock"))
    assert len(sockets) == 2
    assert all(stat.S_IMODE(s.stat().st_mode) == 0o600 for s in sockets)
