"""Shared test helpers: a Flet protocol client over Quart's test client, a
real Hypercorn server in a subprocess, and the rule for missing services
(skip locally, fail when CI=true)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest

from quart_flet.client import browserid

# the harness's fixtures (installed, the pytest11 entry point loads it by this same name)
pytest_plugins = ["quart_flet.testing.plugin"]

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REGISTER_CLIENT, PATCH_CONTROL, CONTROL_EVENT = 1, 2, 3
UPDATE_CONTROL_PROPS, INVOKE_METHOD, SESSION_CRASHED = 4, 5, 6


def require_service(name: str, found: bool, how: str) -> None:
    """Skip when a system service is missing locally; fail under CI=true."""
    if found:
        return
    message = f"{name} is not available: {how}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def encode(action: int, body: Any) -> bytes:
    return b"\x00" + msgpack.packb([action, body])


def decode(frame: bytes | str) -> Any:
    assert isinstance(frame, bytes) and frame[:1] == b"\x00", frame[:20]
    return msgpack.unpackb(frame[1:], strict_map_key=False, ext_hook=lambda code, data: None)


def register_frame(session_id: str | None = None, route: str = "/") -> bytes:
    page = {"route": route, "width": 800, "height": 600, "platform": "linux", "web": True}
    return encode(REGISTER_CLIENT, {"session_id": session_id, "page_name": "", "page": page})


def browser(test_app: Any) -> Any:
    """A Quart test client as a browser that loaded the page: it carries a
    browser id (the ``flet_browser`` cookie), so its WebSockets may resume
    the sessions it started. Each call is another browser."""
    client = test_app.test_client()
    client.set_cookie("localhost", browserid.COOKIE, browserid.new_id())
    return client


def find_controls(tree: Any, **match: Any) -> list[dict[str, Any]]:
    """Every control dict in a page patch / patch op whose fields match."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "_c" in node and all(node.get(k) == v for k, v in match.items()):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(tree)
    return found


@dataclass
class FletTestClient:
    """Speaks the Flet protocol over a Quart test websocket."""

    ws: Any
    session_id: str | None = None
    messages: list[Any] = field(default_factory=list)

    async def receive(self, timeout: float = 10) -> Any:
        message = decode(await asyncio.wait_for(self.ws.receive(), timeout))
        self.messages.append(message)
        return message

    async def receive_until(self, predicate: Any, timeout: float = 10) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            message = await self.receive(max(remaining, 0.001))
            if predicate(message):
                return message

    async def register(self, session_id: str | None = None, route: str = "/") -> Any:
        await self.ws.send(register_frame(session_id, route))
        reply = await self.receive_until(lambda m: m[0] == REGISTER_CLIENT)
        self.session_id = reply[1]["session_id"]
        return reply

    async def click(self, target: int, name: str = "click", data: Any = None) -> None:
        await self.ws.send(encode(CONTROL_EVENT, {"target": target, "name": name, "data": data}))

    async def patch_with(self, value: Any, timeout: float = 10) -> Any:
        """Wait for a PATCH_CONTROL carrying ``value`` anywhere in it."""
        return await self.receive_until(
            lambda m: m[0] == PATCH_CONTROL and contains(m[1], value), timeout
        )


class WebsocketsSocket:
    """A websockets client connection as FletTestClient's socket (a real server)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def receive(self) -> bytes:
        data: bytes = await self.ws.recv()
        return data


async def start_counter(client: FletTestClient) -> int:
    """Register, wait for the first render; return the FAB id."""
    reply = await client.register()
    assert reply[1]["error"] == ""
    render = await client.receive_until(
        lambda m: m[0] == PATCH_CONTROL and find_controls(m[1], key="counter")
    )
    (fab,) = find_controls(render, _c="FloatingActionButton")
    return int(fab["_i"])


def contains(node: Any, value: Any) -> bool:
    """``value`` is ``node`` or anywhere inside it."""
    if node == value:
        return True
    if isinstance(node, dict):
        return any(contains(v, value) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(contains(v, value) for v in node)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_hypercorn(
    app: str,
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    path: str = "/",
    verify: Any = None,
    supervised: bool = False,
) -> Server:
    """``python -m hypercorn app`` on a free loopback port; returns when it
    answers. ``supervised``: ``quart-flet run app --port ...`` instead (its
    workers under quart-flet's supervisor), ``args`` being its flags."""
    port = free_port()
    log_path = tmp_path / f"hypercorn-{port}.log"
    if supervised:
        command = [sys.executable, "-m", "quart_flet.cli", "run", app, "--port", str(port)]
    else:
        command = [sys.executable, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}"]
    command += args
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"{scheme}://127.0.0.1:{port}"
    server = Server(proc, url, port, log_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + path, timeout=2, context=verify).read()
            return server
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"hypercorn did not start:\n{server.log()}") from None
            time.sleep(0.1)  # polling for the port to answer, bounded by the deadline
        except BaseException:
            server.stop()  # never leave a server behind a failed start
            raise


def wait_for_log(server: Server, text: str, count: int = 1, timeout: float = 15) -> None:
    """Bounded polling on the server's log until ``text`` shows ``count`` times."""
    deadline = time.monotonic() + timeout
    while server.log().count(text) < count:
        assert server.proc.poll() is None, f"server died:\n{server.log()}"
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{server.log()}"
        time.sleep(0.05)


@pytest.fixture(name="hypercorn")
def _hypercorn(tmp_path: Path) -> Iterator[Any]:
    started: list[Server] = []

    def start(app: str, *args: str, **kwargs: Any) -> Server:
        server = start_hypercorn(app, tmp_path, *args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    require_service(
        "Chromium",
        os.path.exists(CHROMIUM) or shutil.which("chromium") is not None,
        "apt-get install chromium (or set CHROMIUM=/path)",
    )


@dataclass
class Certificate:
    """A test CA and a certificate for 127.0.0.1 issued by it, as files."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    cert_pem: bytes

    def client_context(self) -> Any:
        """A fresh SSLContext trusting the CA (httpx sets ALPN on the one it
        is given, so contexts are not shared between clients)."""
        import ssl

        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(name="tls", scope="session")
def _tls(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = Certificate(folder / "cert.pem", folder / "key.pem", folder / "ca.pem", b"")
    cert.private_key_and_cert_chain_pem.write_to_path(str(files.cert_file))
    cert.private_key_pem.write_to_path(str(files.key_file))
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.cert_pem = cert.cert_chain_pems[0].bytes()
    return files


def start_tls_hypercorn(
    hypercorn: Any, tls: Certificate, app: str, *args: str, **kw: Any
) -> Server:
    """Hypercorn with examples/hypercorn.toml (TLS, ALPN h2) and the test certificate."""
    return hypercorn(
        app,
        "--config",
        str(ROOT / "examples/hypercorn.toml"),
        "--certfile",
        str(tls.cert_file),
        "--keyfile",
        str(tls.key_file),
        *args,
        scheme="https",
        verify=tls.client_context(),
        **kw,
    )


def _bin_first() -> str:
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


@contextmanager
def shell_server(command: str, port: int, tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """Run ``command`` through /bin/sh in its own process group, as a
    platform or a person would; yield its URL once it answers; stop the whole
    group with SIGTERM and wait until it is gone."""
    log_path = tmp_path / f"shell-{port}.log"
    with open(log_path, "wb") as log:
        shell = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=ROOT,
            # the interpreter's bin first, as an activated virtual environment
            # has it: the Procfile's plain `hypercorn` is the one installed here
            env={**os.environ, "PATH": _bin_first(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded polling until the port answers
            try:
                urllib.request.urlopen(url + "/", timeout=2).read()
                break
            except OSError:
                assert shell.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(shell.pid, signal.SIGTERM)  # as a platform stops a dyno
        shell.wait(10)
        deadline = time.monotonic() + 10
        while _group_alive(shell.pid):  # bounded polling until the server is gone too
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def pytest_report_header() -> str:
    """Say which quart_flet the suite imports: it should be the installed wheel."""
    import quart_flet

    return f"quart-flet {quart_flet.__version__} from {Path(quart_flet.__file__).parent}"
