"""Issue 6: sticky sessions. A Flet session lives in one process, so a load
balancer must keep each browser on its process. With ``sticky_cookie`` the
index gives every browser a random id in a cookie, and a real nginx hashing
on it (``hash $cookie_flet_client consistent;``) in front of two Hypercorn
processes sends a reconnecting browser back to the process holding its
session. Round robin does not, and the server says why in its log."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    PATCH_CONTROL,
    FletTestClient,
    Server,
    find_controls,
    free_port,
    require_service,
    wait_for_log,
)
from test_redis import WebsocketsAdapter
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from examples.counter import main as counter_main
from quart_flet import OptionError, quart_app
from quart_flet.client import browserid
from quart_flet.options import resolve_options

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
COOKIE = "flet_client"
STICKY = f"hash $cookie_{COOKIE} consistent;"
ROUND_ROBIN = ""  # nginx's default balancing
ONE_YEAR = 365 * 24 * 3600

# quart_flet's INFO lines (unknown sessions, the app's disconnects) in the server log
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {"quart_flet": {"level": "INFO", "handlers": ["stderr"]}},
}

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    upstream flet {{
        {balancing}
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://flet;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            # $http_host keeps the port, which the WebSocket Origin check compares
            proxy_set_header Host $http_host;
            proxy_read_timeout 1h;
            # a server that is stopping refuses new connections, and a new
            # Flet socket with 503: both go to the next server
            proxy_next_upstream error timeout http_503;
        }}
    }}
}}
"""


class Nginx:
    """A foreground nginx whose config, pid, logs and temp files are all in ``tmp``."""

    def __init__(self, tmp: Path, upstreams: list[Server], balancing: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"        server 127.0.0.1:{s.port};" for s in upstreams)
        self.conf = tmp / "nginx.conf"
        self.conf.write_text(
            NGINX_CONF.format(tmp=tmp, port=self.port, balancing=balancing, servers=servers)
        )
        self.log_path = tmp / "nginx-error.log"
        command = [NGINX, "-p", str(tmp), "-c", str(self.conf), "-e", str(self.log_path)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not start:\n{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(name="upstreams")
def _upstreams(hypercorn: Any, tmp_path: Path) -> list[Server]:
    """Two Hypercorn processes serving the counter with FLET_STICKY_COOKIE."""
    require_service("nginx", Path(NGINX).exists(), "apt-get install nginx")  # before starting
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    args = ("--workers", "0", "--log-config", f"json:{log_config}")
    env = {"FLET_STICKY_COOKIE": COOKIE}
    return [hypercorn("tests.apps.sticky:app", *args, env=env) for _ in range(2)]


@pytest.fixture(name="nginx")
def _nginx(upstreams: list[Server], tmp_path: Path) -> Iterator[Any]:
    """Starts nginx in front of ``upstreams``; stopped before they are."""
    started: list[Nginx] = []

    def start(balancing: str) -> Nginx:
        directory = tmp_path / f"nginx-{len(started)}"
        directory.mkdir()
        proxy = Nginx(directory, upstreams, balancing)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@dataclass
class Browser:
    """One browser tab at ``url`` (through nginx, or straight to a server):
    its cookies (the sticky id and its browser id), Origin and Flet session."""

    url: str
    cookies: dict[str, str]
    ws: ClientConnection | None = None
    client: FletTestClient | None = None
    session_id: str = ""
    pid: int = 0
    counter: str = ""
    fab: int = 0

    async def open(self, session_id: str | None = None) -> None:
        """Connect to /ws and register (resume ``session_id``)."""
        self.ws = await connect(
            self.url.replace("http", "ws") + "/ws",
            origin=Origin(self.url),
            additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())},
            max_size=None,
        )
        self.client = FletTestClient(WebsocketsAdapter(self.ws))
        reply = await self.client.register(session_id)  # a resumed page comes with it
        if not find_controls(reply, key="pid"):  # main adds it last
            await self.client.receive_until(
                lambda m: m[0] == PATCH_CONTROL and bool(find_controls(m, key="pid"))
            )
        assert self.client.session_id
        self.session_id = self.client.session_id
        render = self.client.messages  # of this connection only
        self.pid = int(find_controls(render, key="pid")[0]["value"].removeprefix("pid:"))
        self.counter = find_controls(render, key="counter")[-1]["value"]
        self.fab = find_controls(render, _c="FloatingActionButton")[-1]["_i"]

    async def click(self, expect: str) -> None:
        assert self.client is not None
        await self.client.click(self.fab)
        await self.client.patch_with(expect)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


async def index_cookies(proxy: Nginx) -> dict[str, str]:
    """What a new browser gets: the index, and the sticky cookie and its
    browser id with it."""
    async with httpx.AsyncClient(base_url=proxy.url) as http:
        index = await http.get("/")
    assert index.status_code == 200
    assert {COOKIE, browserid.COOKIE} <= set(index.cookies)
    return dict(index.cookies)


def set_cookies(response: Any) -> dict[str, str]:
    """The Set-Cookie headers of ``response``, by cookie name."""
    return {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}


def holder(upstreams: list[Server], pid: int) -> Server:
    (server,) = [s for s in upstreams if s.proc.pid == pid]
    return server


def wait_for_disconnect(upstreams: list[Server], browser: Browser) -> None:
    """Until the session's process has seen its client leave (then it can resume)."""
    wait_for_log(holder(upstreams, browser.pid), f"session {browser.session_id} disconnected")


@pytest.mark.server
async def test_a_browser_resumes_its_session_on_its_process_through_nginx(
    upstreams: list[Server], nginx: Any
) -> None:
    proxy = nginx(STICKY)
    browser = Browser(proxy.url, await index_cookies(proxy))
    try:
        await browser.open()
        await browser.click("1")
        first_session, first_pid = browser.session_id, browser.pid
        await browser.close()
        wait_for_disconnect(upstreams, browser)

        await browser.open(first_session)
        assert (browser.session_id, browser.pid) == (first_session, first_pid)
        assert browser.counter == "1"
        await browser.click("2")
    finally:
        await browser.close()
    for server in upstreams:
        assert "unknown session" not in server.log(), server.log()
        assert "Traceback" not in server.log(), server.log()


@pytest.mark.server
async def test_browsers_spread_over_both_processes_and_each_stays_on_its_own(
    upstreams: list[Server], nginx: Any
) -> None:
    proxy = nginx(STICKY)
    browsers = [Browser(proxy.url, await index_cookies(proxy)) for _ in range(20)]
    assert len({b.cookies[COOKIE] for b in browsers}) == 20
    try:
        for browser in browsers:
            await browser.open()
        first = [(b.session_id, b.pid) for b in browsers]
        assert {pid for _, pid in first} == {s.proc.pid for s in upstreams}
        for browser in browsers:
            await browser.close()
            wait_for_disconnect(upstreams, browser)
        for browser, (session_id, _) in zip(browsers, first, strict=True):
            await browser.open(session_id)
        assert [(b.session_id, b.pid) for b in browsers] == first
    finally:
        for browser in browsers:
            await browser.close()
    for server in upstreams:
        assert "unknown session" not in server.log(), server.log()


@pytest.mark.server
async def test_without_stickiness_a_reconnect_lands_elsewhere_and_the_log_says_why(
    upstreams: list[Server], nginx: Any
) -> None:
    proxy = nginx(ROUND_ROBIN)
    browser = Browser(proxy.url, await index_cookies(proxy))
    try:
        await browser.open()
        await browser.click("1")
        first_session, first_pid = browser.session_id, browser.pid
        await browser.close()
        wait_for_disconnect(upstreams, browser)

        await browser.open(first_session)  # round robin: the other process
        assert browser.pid != first_pid
        assert browser.session_id != first_session
        assert browser.counter == "0"  # a new session: the count is lost
    finally:
        await browser.close()
    other = holder(upstreams, browser.pid)
    wait_for_log(other, f"client asked to resume unknown session flet/{first_session}")
    assert "lives in another process (across servers, use sticky sessions)" in other.log()


async def test_the_index_sets_the_sticky_cookie_once_and_keeps_its_etag() -> None:
    app = quart_app(counter_main, sticky_cookie=COOKIE)
    async with app.test_app():
        client = app.test_client(use_cookies=False)  # every request a new browser
        first = await client.get("/")
        assert first.status_code == 200
        set_cookie = set_cookies(first)[COOKIE]
        for attribute in ("Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={ONE_YEAR}"):
            assert attribute in set_cookie, set_cookie
        assert "Secure" not in set_cookie
        assert first.headers["Cache-Control"] == "private, no-cache"
        etag = first.headers["ETag"]

        # a new browser revalidating a cached index: a 304, with its own cookie
        revalidated = await client.get("/", headers={"If-None-Match": etag})
        assert revalidated.status_code == 304
        assert set_cookies(revalidated)[COOKIE] != set_cookie

        # a browser that has its cookies keeps them
        cookie = "; ".join(c.split(";")[0] for c in set_cookies(first).values())
        again = await client.get("/", headers={"Cookie": cookie, "If-None-Match": etag})
        assert again.status_code == 304 and "Set-Cookie" not in again.headers
        assert again.headers["Cache-Control"] == "no-cache"

        secure = await client.get("/settings", scheme="https")  # a client-side route
        assert "Secure" in set_cookies(secure)[COOKIE]


async def test_the_sticky_cookie_is_mounted_at_the_blueprint() -> None:
    app = quart_app(counter_main)
    other = quart_app(counter_main, sticky_cookie=COOKIE)
    async with other.test_app() as test_app:
        response = await test_app.test_client().get("/sub/", root_path="/sub")
        assert "Path=/sub/" in set_cookies(response)[COOKIE]
    async with app.test_app() as test_app:
        assert COOKIE not in set_cookies(await test_app.test_client().get("/"))


@pytest.mark.parametrize("name", ["flet client", "a;b", "a=b", "é", 'a"b', "a,b"])
def test_a_sticky_cookie_must_be_a_cookie_name(name: str) -> None:
    with pytest.raises(OptionError, match="sticky_cookie.*is not a cookie name"):
        resolve_options(sticky_cookie=name)


def test_the_sticky_cookie_comes_from_flet_sticky_cookie() -> None:
    assert resolve_options().sticky_cookie is None
    assert resolve_options({"FLET_STICKY_COOKIE": "srv_id"}).sticky_cookie == "srv_id"
    assert resolve_options(sticky_cookie="a!b").sticky_cookie == "a!b"
    with pytest.raises(OptionError, match=r"sticky_cookie \(from FLET_STICKY_COOKIE\)"):
        resolve_options({"FLET_STICKY_COOKIE": "no/slash"})
