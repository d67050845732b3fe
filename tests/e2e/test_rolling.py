"""Issue 25: a rolling restart behind the tested nginx recipe
(docs/how-to/scale-out.md). Two Hypercorn processes behind nginx, hashing on
the sticky cookie; one gets SIGTERM, as Kubernetes does to the pod it
replaces. While it drains, its open sessions keep answering, and new
browsers and plain requests reach the other one; then its sessions close
with 1012, reconnect through nginx to the other server and find their
count there (``on_session_save``). Meanwhile no request fails."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    FletTestClient,
    Server,
    WebsocketsSocket,
    require_service,
    start_counter,
    wait_for_log,
)
from test_sticky import COOKIE, LOG_CONFIG, NGINX, STICKY, Browser, Nginx, index_cookies
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from quart_flet.session.registry import CONTROL_ID_RANGE

DRAIN, GRACEFUL_TIMEOUT = 2.0, 5


class Traffic:
    """New users all along: the index, and new browsers that open a Flet
    session; what failed, and what was answered when."""

    def __init__(self, proxy: Nginx) -> None:
        self.proxy = proxy
        self.failures: list[str] = []
        self.answered: list[float] = []  # when each request or session was answered
        self.took: list[tuple[float, float, str]] = []  # (start, end, what): for a report
        self.pids: list[tuple[float, int]] = []  # when a new session started, and where
        self.stop = False

    async def run(self) -> None:
        """Two loops of index requests and one of new sessions, side by side:
        one slow answer does not hold up the others."""
        await asyncio.gather(self._requests(), self._requests(), self._sessions())

    async def _requests(self) -> None:
        async with httpx.AsyncClient(base_url=self.proxy.url, timeout=10) as http:
            while not self.stop:
                await self._timed("GET /", self._get(http))
                await asyncio.sleep(0.05)  # pace: about 40 requests a second in all

    async def _get(self, http: httpx.AsyncClient) -> None:
        index = await http.get("/")
        if index.status_code != 200:
            raise AssertionError(f"GET / answered {index.status_code}")

    async def _sessions(self) -> None:
        while not self.stop:
            await self._timed("a new session", self._new_session())
            await asyncio.sleep(0.1)

    async def _new_session(self) -> None:
        browser = Browser(self.proxy.url, await index_cookies(self.proxy))
        try:
            await browser.open()
            self.pids.append((time.monotonic(), browser.pid))
        finally:
            await browser.close()

    async def _timed(self, what: str, action: Any) -> None:
        started = time.monotonic()
        try:
            await action
            self.answered.append(time.monotonic())
        except Exception as error:  # each failure is the test's finding
            self.failures.append(f"{what}: {type(error).__name__}: {error}")
        self.took.append((started, time.monotonic(), what))


async def closed_with(browser: Browser) -> int:
    """The close code of ``browser``'s socket once the server closes it."""
    assert browser.ws is not None
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(browser.ws.recv(), DRAIN + GRACEFUL_TIMEOUT)
    code = browser.ws.close_code
    browser.ws = None
    return code or 0


def processes(server: Server) -> set[int]:
    """The pids serving sessions: the server's, or its workers' (Linux's
    list of a process's children)."""
    pid = server.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {pid} | {int(child) for child in children}


@pytest.mark.server
@pytest.mark.parametrize("workers", [0, 2], ids=["hypercorn", "run-2"])
async def test_a_rolling_restart_behind_nginx_fails_no_request(
    hypercorn: Any, tmp_path: Path, workers: int
) -> None:
    """Each server one Hypercorn process, or ``quart-flet run --workers 2``
    (its graceful timeout is the same 5 s)."""
    require_service("nginx", Path(NGINX).exists(), "apt-get install nginx")
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    if workers:
        args: tuple[str, ...] = ("--workers", str(workers))
    else:
        args = ("--workers", "0", "--graceful-timeout", str(GRACEFUL_TIMEOUT))
        args += ("--log-config", f"json:{log_config}")
    env = {"FLET_STICKY_COOKIE": COOKIE, "FLET_DRAIN_SECONDS": str(DRAIN)}
    old, new = (
        hypercorn("tests.apps.rolling:app", *args, env=env, supervised=bool(workers))
        for _ in range(2)
    )
    for server in (old, new):
        wait_for_log(server, "Running on", max(workers, 1))
    olds, news = processes(old), processes(new)
    (tmp_path / "nginx").mkdir()
    proxy = Nginx(tmp_path / "nginx", [old, new], STICKY)
    browsers: list[Browser] = []
    traffic = Traffic(proxy)
    running: asyncio.Task[None] | None = None
    try:
        # browsers until at least three live on each server
        while min(sum(b.pid in pids for b in browsers) for pids in (olds, news)) < 3:
            assert len(browsers) < 60, "nginx put every browser on one server"
            browser = Browser(proxy.url, await index_cookies(proxy))
            await browser.open()
            await browser.click("1")
            browsers.append(browser)
        on_old = [b for b in browsers if b.pid in olds]
        on_new = [b for b in browsers if b.pid in news]
        running = asyncio.create_task(traffic.run())
        while len(traffic.answered) < 5:  # new users are arriving
            assert not running.done() and not traffic.failures, traffic.failures
            await asyncio.sleep(0.02)

        sigterm = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)
        for browser in on_old:  # the drain: the old server's sessions keep working
            await browser.click("2")
        codes = await asyncio.gather(*(closed_with(b) for b in on_old))
        closed = time.monotonic()
        assert set(codes) == {1012}, old.log()
        assert closed - sigterm >= DRAIN - 0.5
        assert await asyncio.to_thread(old.proc.wait, GRACEFUL_TIMEOUT + 2) == 0, old.log()

        for browser in on_old:  # back through nginx: the other server, the count kept
            gone = browser.session_id
            await browser.open(gone)
            assert browser.pid in news
            assert browser.session_id != gone
            assert browser.counter == "2"
            await browser.click("3")
        for browser in on_new:  # untouched
            await browser.click("2")

        while not any(when > closed for when in traffic.answered):
            assert not running.done(), traffic.failures
            await asyncio.sleep(0.02)
        traffic.stop = True
        await running
        assert traffic.failures == [], traffic.failures
        during = [when for when in traffic.answered if sigterm < when < closed]
        slow = [
            f"{what} from {start - sigterm:+.2f} s for {end - start:.2f} s"
            for start, end, what in traffic.took
            if end - start > 0.5
        ]
        assert len(during) >= 10, (
            f"{len(during)} answered in the drain ({closed - sigterm:.2f} s); slow: {slow}\n"
            f"{proxy.log()[-3000:]}\n{old.log()[-3000:]}"
        )
        started = [pid for when, pid in traffic.pids if when > sigterm]
        assert started and set(started) <= news
        for server in (old, new):
            assert "Traceback" not in server.log(), server.log()
        assert "no live upstreams" not in proxy.log(), proxy.log()
    finally:
        traffic.stop = True
        if running is not None:
            await asyncio.gather(running, return_exceptions=True)
        for browser in browsers:
            await browser.close()
        proxy.stop()


@pytest.mark.server
async def test_a_new_process_gives_its_controls_other_ids_than_the_last_one(
    hypercorn: Any,
) -> None:
    """A page whose server was replaced sends the events it queued meanwhile,
    with its old controls' ids, to the new server's session. flet numbers the
    controls of every process from the same start, so there those ids were
    other controls' (a click on another button); now each process starts at
    a random point, and the old ids find nothing."""
    fabs = []
    for _ in range(2):  # the same app, first session of a fresh process each
        server = hypercorn("examples.counter:app", "--workers", "0")
        async with connect(server.url.replace("http", "ws") + "/ws") as ws:
            fabs.append(await start_counter(FletTestClient(WebsocketsSocket(ws))))
        server.stop()
    assert fabs[0] != fabs[1]
    assert all(fab >= CONTROL_ID_RANGE[0] for fab in fabs)
