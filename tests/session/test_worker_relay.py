"""Issue 24: with ``--workers N`` on one port, a reconnect that the kernel
hands to a worker that does not hold its session is relayed to the one that
does, and resumes with its state, as on one worker."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_for_log
from test_sticky import LOG_CONFIG, Browser


async def new_tab(url: str) -> Browser:
    """A browser that loaded the page first: it has its browser id cookie."""
    async with httpx.AsyncClient(base_url=url) as http:
        index = await http.get("/")
    assert index.status_code == 200
    return Browser(url, dict(index.cookies))


@pytest.mark.server
async def test_every_reconnect_resumes_its_session_whichever_worker_it_lands_on(
    hypercorn: Any, tmp_path: Path
) -> None:
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    server = hypercorn(
        "tests.apps.sticky:app", "--workers", "2", "--log-config", f"json:{log_config}"
    )
    tabs: list[Browser] = []
    # the kernel picks the worker, and keeps picking the one that is awake:
    # open tabs until each worker holds a few
    while (
        len(tabs) < 8
        or min(Counter(tab.pid for tab in tabs).values()) < 2
        or len({tab.pid for tab in tabs}) < 2
    ):
        assert len(tabs) < 60, "the kernel gave every tab to one worker"
        tab = await new_tab(server.url)
        await tab.open()
        await tab.click("1")
        tabs.append(tab)
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
            tab.counter = str(round_ + 2)
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


def test_the_directories_of_servers_killed_as_a_whole_are_cleared(tmp_path: Path) -> None:
    """A server killed with SIGKILL (docker kill, out of memory) runs no stop:
    the next relay to start removes its directory, and only those of servers
    that are gone, in its own pid namespace."""
    import subprocess

    from quart_flet.session.relay import clear_dead_servers

    namespace = os.stat("/proc/self/ns/pid").st_ino
    gone = subprocess.Popen(["true"])
    gone.wait()
    parent = os.getppid()
    started = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    base = tmp_path / "quart-flet-uid"
    ours = base / f"workers-{os.getpid()}-{namespace}-1"
    dead = base / f"workers-{gone.pid}-{namespace}-1"
    alive = base / f"workers-{parent}-{namespace}-{started}"
    reused = base / f"workers-{parent}-{namespace}-{int(started) + 1}"  # its pid, reused
    elsewhere = base / f"workers-{gone.pid}-{namespace + 1}-1"  # another namespace
    for directory in (ours, dead, alive, reused, elsewhere):
        directory.mkdir(parents=True)
        (directory / "key").write_bytes(b"k")
        (directory / "123.sock").touch()
    clear_dead_servers(ours)
    assert sorted(p.name for p in base.iterdir()) == sorted(
        p.name for p in (ours, alive, elsewhere)
    )


async def test_a_removed_key_or_socket_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /tmp cleaner (or an operator) removes the workers' key file or a
    worker's socket: the worker writes the same key again and listens again,
    so a replacement worker still shares the key and finds its siblings."""
    import asyncio

    from quart_flet.session import relay

    monkeypatch.setattr(relay, "HEAL_SECONDS", 0.05)

    async def no_session(fields: dict[str, Any], wire: Any) -> bool:
        return False

    directory = tmp_path / "quart-flet-uid" / "workers-1-2-3"
    channel = relay.Relay(directory, None, no_session)
    await channel.start()
    try:
        key = (directory / "key").read_bytes()
        (directory / "key").unlink()
        channel.path.unlink()
        deadline = asyncio.get_running_loop().time() + 5
        while not ((directory / "key").exists() and channel.path.exists()):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)  # bounded polling for the repair
        assert (directory / "key").read_bytes() == key
        assert stat.S_IMODE((directory / "key").stat().st_mode) == 0o600
        assert stat.S_IMODE(channel.path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(channel.path.stat().st_mode)
        assert channel.server is not None and channel.server.is_serving()
    finally:
        await channel.stop()
