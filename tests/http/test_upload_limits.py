"""Issue 21, uploads over real connections to a real Hypercorn: an oversize
upload gets its 413 (HTTP/1.1 and HTTP/2, with and without Content-Length,
2 MiB to 1 GiB against a 1 MiB limit) instead of a connection reset, a full
disk gets a 507, and SIGTERM during uploads loses nothing.

The 413s are read by raw socket clients: a "sends everything first" one, as
Python's http.client and requests are (a send error is a failure: that is
what those clients raise), and a "reads while it sends" one, as curl is."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
from conftest import Certificate, require_service, start_tls_hypercorn
from test_uploads import SECRET, leftovers, make_app, signed_url

from quart_flet.http.uploadbody import LINGER_BYTES, LINGER_IDLE_SECONDS, LINGER_SECONDS
from quart_flet.http.uploads import _refusal

MiB = 1024 * 1024
GiB = 1024 * MiB
LIMIT = 1 * MiB
CHUNK = b"x" * (64 * 1024)
TOO_LARGE = {"error": f"upload exceeds the limit of {LIMIT} bytes", "status": 413}


def start_limited(hypercorn: Any, upload_dir: Path, *args: str, tls: Any = None) -> Any:
    """examples/upload.py with a 1 MiB max_upload_size."""
    env = {
        "FLET_UPLOAD_DIR": str(upload_dir),
        "FLET_SECRET_KEY": SECRET,
        "FLET_MAX_UPLOAD_SIZE": str(LIMIT),
    }
    if tls is not None:
        return start_tls_hypercorn(hypercorn, tls, "examples.upload:app", *args, env=env)
    return hypercorn("examples.upload:app", *args, env=env)


# ---- an HTTP/1.1 client on a raw socket -------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client sent
    closed_after: float  # seconds from the complete answer to the server's close

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Reader:
    data: bytearray = field(default_factory=bytearray)
    complete_at: float | None = None

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if self.complete_at is None and self.complete():
            self.complete_at = time.monotonic()

    def complete(self) -> bool:
        head, sep, body = bytes(self.data).partition(b"\r\n\r\n")
        if not sep:
            return False
        length = _headers(head).get("content-length")
        return length is not None and len(body) >= int(length)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {
        name.strip().lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)
    }


def raw_put(
    port: int,
    path: str,
    size: int,
    chunked: bool = False,
    reads_while_sending: bool = False,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """PUT ``size`` bytes on a fresh connection and read the answer to the
    server's close. Without ``reads_while_sending`` the whole body goes out
    before a byte is read, and a send error fails (as http.client and requests
    do); with it the client reads as it sends and stops sending once the
    answer is complete (as curl does)."""
    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=60)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n\r\n".encode())
    reader = _Reader()
    sent = 0
    with sock:
        while sent < size and reader.complete_at is None:
            piece = CHUNK[: size - sent]
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            if reads_while_sending:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    received = sock.recv(65536)
                    reader.feed(received)
                    if not received:
                        break
                    continue
            try:
                sock.sendall(data)
            except OSError as error:
                raise AssertionError(
                    f"the server cut the upload off after {sent} bytes: {error!r}"
                ) from None
            sent += len(piece)
        if chunked and sent == size:
            sock.sendall(b"0\r\n\r\n")
        while True:  # to the server's close, bounded by the socket timeout
            try:
                received = sock.recv(65536)
            except ConnectionResetError:
                assert reader.complete_at is not None, "connection reset before the answer"
                break
            if not received:
                break
            reader.feed(received)
    closed = time.monotonic()
    head, _, body = bytes(reader.data).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), reader.data[:200]
    return Answer(
        int(head.split()[1]),
        _headers(head),
        body,
        sent,
        closed - (reader.complete_at or closed),
    )


# ---- HTTP/1.1 ----------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversize_upload_gets_its_413_though_the_client_sends_everything_first(
    hypercorn: Any, tmp_path: Path, chunked: bool
) -> None:
    """The failure was probabilistic (0 of 15 at 32 MiB, 12 of 15 at 2 MiB):
    ten in a row."""
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir)
    for _ in range(10):
        answer = raw_put(server.port, signed_url("big.bin"), 32 * MiB, chunked=chunked)
        assert (answer.status, answer.json()) == (413, TOO_LARGE)
        assert answer.headers["connection"] == "close"
        assert answer.sent == 32 * MiB
    assert leftovers(upload_dir) == []


@pytest.mark.server
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("size", "reads_while_sending"),
    [(2 * MiB, False), (8 * MiB, False), (1 * GiB, False), (1 * GiB, True)],
    ids=["2MiB", "8MiB", "1GiB", "1GiB-reading"],
)
def test_oversize_uploads_from_2_mib_to_1_gib_get_their_413(
    hypercorn: Any, tmp_path: Path, size: int, reads_while_sending: bool, chunked: bool
) -> None:
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir)
    answer = raw_put(
        server.port,
        signed_url("big.bin"),
        size,
        chunked=chunked,
        reads_while_sending=reads_while_sending,
    )
    assert (answer.status, answer.json()) == (413, TOO_LARGE)
    if answer.headers.get("connection") != "close":
        # answered only once the whole body had arrived (a small one, read
        # fast): nothing is left to drain, so the connection may stay open
        assert answer.sent == size and size <= 8 * MiB, answer.headers
    if reads_while_sending:
        # it stopped sending at the answer; the server waited the idle bound, then closed
        assert answer.sent < size
        assert answer.closed_after < LINGER_IDLE_SECONDS + 3
    assert leftovers(upload_dir) == []


@pytest.mark.server
def test_a_client_still_sending_past_the_bounds_is_cut_off(hypercorn: Any, tmp_path: Path) -> None:
    """A client that sends 2 GiB before it reads gets the server's close once
    LINGER_BYTES were thrown away: reading the rest is bounded."""
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir)
    started = time.monotonic()
    with pytest.raises(AssertionError, match="cut the upload off") as cut:
        raw_put(server.port, signed_url("big.bin"), 2 * GiB)
    assert time.monotonic() - started < LINGER_SECONDS + 10
    sent = int(str(cut.value).split("after ")[1].split()[0])
    # the server read the limit, then threw LINGER_BYTES away; the rest of
    # what the client sent sat in the two sockets' buffers
    assert LINGER_BYTES < sent < LINGER_BYTES + 64 * MiB
    assert leftovers(upload_dir) == []


@pytest.mark.server
def test_an_oversize_upload_gets_its_413_over_tls(
    hypercorn: Any, tmp_path: Path, tls: Certificate
) -> None:
    """HTTP/1.1 over TLS (examples/hypercorn.toml), sending everything first."""
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir, tls=tls)
    for chunked in (False, True):
        answer = raw_put(
            server.port,
            signed_url("big.bin"),
            32 * MiB,
            chunked=chunked,
            tls=tls.client_context(),
        )
        assert (answer.status, answer.json()) == (413, TOO_LARGE)
    assert leftovers(upload_dir) == []


@pytest.mark.server
def test_a_refused_signature_is_heard_too(hypercorn: Any, tmp_path: Path) -> None:
    """Any early answer lingers, not only a 413: here a 403 before any byte is read."""
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir)
    answer = raw_put(server.port, signed_url("a.bin", keys=["another key"]), 32 * MiB)
    assert answer.status == 403 and "signature" in answer.json()["error"]


@pytest.mark.server
def test_a_stored_upload_keeps_its_connection(hypercorn: Any, tmp_path: Path) -> None:
    """No early answer, no lingering: no Connection: close, and the next
    request rides the same connection."""
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir, "--access-logfile", "-")
    with httpx.Client(base_url=server.url) as client:
        first = client.put(signed_url("a.bin"), content=_body(LIMIT))
        second = client.put(signed_url("b.bin"), content=b"small")
    assert (first.status_code, second.status_code) == (200, 200)
    assert "connection" not in first.headers and "connection" not in second.headers
    clients = {line.split()[5] for line in server.log().splitlines() if "PUT /upload" in line}
    assert len(clients) == 1 and next(iter(clients)).startswith("127.0.0.1:"), server.log()
    assert (upload_dir / "a.bin").stat().st_size == LIMIT


# ---- HTTP/2 ------------------------------------------------------------------


def _body(size: int) -> Iterator[bytes]:
    for start in range(0, size, len(CHUNK)):
        yield CHUNK[: size - start]


@pytest.mark.server
@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "no-length"])
@pytest.mark.parametrize("over", ["h2c", "tls"])
def test_an_oversize_upload_gets_its_413_over_http2(
    hypercorn: Any, tmp_path: Path, tls: Certificate, over: str, with_length: bool
) -> None:
    """httpx sends the whole body before it reads (over HTTP/2 too): each gets
    its 413, and the connection serves the next request."""
    upload_dir = tmp_path / "uploads"
    if over == "tls":
        server = start_limited(hypercorn, upload_dir, tls=tls)
        client = httpx.Client(http2=True, verify=tls.client_context(), base_url=server.url)
    else:
        server = start_limited(hypercorn, upload_dir)
        client = httpx.Client(http1=False, http2=True, base_url=server.url)
    size = 32 * MiB
    headers = {"content-length": str(size)} if with_length else {}
    with client:
        for _ in range(5):
            response = client.put(
                signed_url("big.bin"), content=_body(size), headers=headers, timeout=60
            )
            assert response.http_version == "HTTP/2"
            assert (response.status_code, response.json()) == (413, TOO_LARGE)
        assert client.get("/").status_code == 200
    assert leftovers(upload_dir) == []


@pytest.mark.server
@pytest.mark.parametrize("stops_at_the_answer", [False, True], ids=["keeps-sending", "stops"])
def test_a_1_gib_upload_over_http2_gets_its_413_and_the_connection_lives(
    hypercorn: Any, tmp_path: Path, stops_at_the_answer: bool
) -> None:
    """1 GiB over one HTTP/2 stream: the answer comes at once, the stream ends
    within the bounds (a RST_STREAM with NO_ERROR for DATA that still comes),
    and another stream on the same connection is served. (Hypercorn alone
    dropped the whole connection at the next DATA frame: a KeyError.)"""
    upload_dir = tmp_path / "uploads"
    server = start_limited(hypercorn, upload_dir)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, _request("PUT", signed_url("big.bin"), ("content-length", str(GiB))))
    sock.sendall(conn.data_to_send())
    streams: dict[int, dict[str, Any]] = {1: {"body": b""}, 3: {"body": b""}}
    sent, started = 0, time.monotonic()
    with sock:
        while not ({"ended", "reset"} & streams[1].keys()):
            assert time.monotonic() - started < LINGER_SECONDS + 10, "the stream never ended"
            may_send = not (stops_at_the_answer and "status" in streams[1])
            window = conn.local_flow_control_window(1) if may_send else 0
            if window > 0:
                size = min(window, conn.max_outbound_frame_size, len(CHUNK))
                conn.send_data(1, CHUNK[:size])
                sock.sendall(conn.data_to_send())
                sent += size
            if select.select([sock], [], [], 0 if window > 0 else 5)[0]:
                _receive(sock, conn, streams)
        conn.send_headers(3, _request("GET", "/"), end_stream=True)
        sock.sendall(conn.data_to_send())
        while "ended" not in streams[3]:
            assert select.select([sock], [], [], 10)[0], "no answer on the second stream"
            _receive(sock, conn, streams)
    assert streams[1]["status"] == 413 and json.loads(streams[1]["body"]) == TOO_LARGE
    assert streams[1].get("reset", h2.errors.ErrorCodes.NO_ERROR) == h2.errors.ErrorCodes.NO_ERROR
    assert sent < GiB
    assert streams[3]["status"] == 200
    assert leftovers(upload_dir) == []


def test_the_http2_fix_is_installed_once() -> None:
    from hypercorn.protocol.h2 import H2Protocol

    from quart_flet.asgi import h2streams

    h2streams.install()
    installed = H2Protocol._handle_events
    h2streams.install()
    assert H2Protocol._handle_events is installed
    assert not hasattr(installed.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]


def _request(method: str, path: str, *headers: tuple[str, str]) -> list[tuple[str, str]]:
    pseudo = [(":method", method), (":path", path), (":scheme", "http")]
    return [*pseudo, (":authority", "127.0.0.1"), *headers]


def _receive(sock: socket.socket, conn: Any, streams: dict[int, dict[str, Any]]) -> None:
    data = sock.recv(65536)
    assert data, f"the server closed the connection: {streams}"
    for event in conn.receive_data(data):
        stream = streams.get(getattr(event, "stream_id", 0))
        if stream is None:
            continue
        if isinstance(event, h2.events.ResponseReceived):
            stream["status"] = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived):
            stream["body"] += event.data
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream["ended"] = True
        elif isinstance(event, h2.events.StreamReset):
            stream["reset"] = event.error_code
    sock.sendall(conn.data_to_send())


# ---- a full disk -------------------------------------------------------------


@pytest.fixture(name="small_disk")
def _small_disk(tmp_path: Path) -> Iterator[Any]:
    """A tmpfs of the given size and inode count (mount needs root)."""
    mounted: list[Path] = []

    def mount(size: str = "2m", inodes: int | None = None) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        why = result.stderr.strip() or f"mount exited with {result.returncode}"
        require_service("a tmpfs for a real ENOSPC", result.returncode == 0, f"run as root ({why})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(where)], check=True)


async def test_a_full_disk_is_507_leaves_nothing_and_the_next_upload_works(
    small_disk: Any,
) -> None:
    upload_dir = small_disk("2m")
    app = make_app(upload_dir)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        response = await client.put(signed_url("big.bin"), data=os.urandom(3 * MiB))
        assert response.status_code == 507
        body = await response.get_json()
        assert body["status"] == 507
        assert body["error"].startswith("the server is out of space (No space left on device)")
        assert leftovers(upload_dir) == []
        assert (await client.put(signed_url("next.bin"), data=b"fits")).status_code == 200
    assert leftovers(upload_dir) == [upload_dir / "next.bin"]


async def test_no_inode_left_is_507_too(small_disk: Any) -> None:
    """The temporary file cannot even be created (ENOSPC from open)."""
    upload_dir = small_disk("2m", inodes=1)  # the root directory takes the only one
    app = make_app(upload_dir)
    async with app.test_app() as test_app:
        response = await test_app.test_client().put(signed_url("a.bin"), data=b"x")
    assert response.status_code == 507
    assert "out of space" in (await response.get_json())["error"]
    assert list(upload_dir.iterdir()) == []


@pytest.mark.server
def test_a_full_disk_through_hypercorn_is_507_not_a_reset(small_disk: Any, hypercorn: Any) -> None:
    """8 MiB to a 2 MiB disk, by a client that sends everything first: the
    507 comes mid-body, and is heard."""
    upload_dir = small_disk("2m")
    env = {"FLET_UPLOAD_DIR": str(upload_dir), "FLET_SECRET_KEY": SECRET}
    server = hypercorn("examples.upload:app", env=env)
    answer = raw_put(server.port, signed_url("big.bin"), 8 * MiB)
    assert answer.status == 507 and "out of space" in answer.json()["error"]
    assert leftovers(upload_dir) == []
    assert "upload of big.bin refused: the server is out of space" in server.log()
    assert "Traceback" not in server.log()
    small = httpx.put(server.url + signed_url("small.bin"), content=b"small")
    assert small.status_code == 200
    assert (upload_dir / "small.bin").read_bytes() == b"small"


def test_a_disk_quota_is_507_too() -> None:
    """EDQUOT cannot be had for real here (tmpfs quotas need a kernel built
    with them): the mapping alone."""
    refusal = _refusal(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)))
    assert not isinstance(refusal, OSError)
    assert refusal.status == 507 and "out of space (Disk quota exceeded)" in str(refusal)


# ---- SIGTERM mid-upload ------------------------------------------------------


async def test_a_cancelled_upload_closes_its_file_only_once_the_write_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client leaves (or the server stops) while a thread writes a chunk:
    the thread's write still lands in the upload's own file, and that file is
    closed and removed after it. (The descriptor was closed at once before,
    under the write: EBADF, or another upload's file if its number was reused.)"""
    from quart_flet.http import uploads

    writes: list[str] = []
    writing = threading.Event()

    def slow_write(fd: int, data: bytes) -> None:
        writing.set()
        time.sleep(0.5)  # a slow disk, so that the cancel comes mid-write
        try:
            os.write(fd, data)
            writes.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError as error:
            writes.append(repr(error))

    monkeypatch.setattr(uploads, "_write_all", slow_write)
    app = make_app(tmp_path)
    async with app.test_app() as test_app:
        async with test_app.test_client().request(signed_url("slow.bin"), method="PUT") as conn:
            await conn.send(b"x" * 1000)
            for _ in range(500):  # bounded polling for the thread to start writing
                if writing.is_set():
                    break
                await asyncio.sleep(0.01)
            await conn.disconnect()
        for _ in range(100):  # bounded polling for the clean-up after the write
            if writes and not leftovers(tmp_path):
                break
            await asyncio.sleep(0.02)
    assert len(writes) == 1 and ".upload-" in writes[0] and writes[0].endswith(".part"), writes
    assert leftovers(tmp_path) == []


@pytest.mark.server
@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_during_20_uploads_loses_nothing(
    hypercorn: Any, tmp_path: Path, workers: str
) -> None:
    """20 uploads of 2 MiB, each paced to take 1.5 s to 11 s, and SIGTERM after
    1 s with a 3 s graceful timeout: the quick ones land whole, the slow ones
    leave no file, and every client hears either its 200 or an error."""
    upload_dir = tmp_path / "uploads"
    env = {"FLET_UPLOAD_DIR": str(upload_dir), "FLET_SECRET_KEY": SECRET}
    server = hypercorn(
        "examples.upload:app", "--graceful-timeout", "3", "--workers", workers, env=env
    )
    payloads = [os.urandom(2 * MiB) for _ in range(20)]
    outcomes: dict[int, str] = {}
    sending = threading.Barrier(21, timeout=30)

    def upload(index: int) -> None:
        data, pieces = payloads[index], 32
        pause = (1.5 + index * 0.5) / pieces
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
                head = f"PUT {signed_url(f'u{index}.bin')} HTTP/1.1\r\nHost: x\r\n"
                sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode())
                step = len(data) // pieces
                sock.sendall(data[:step])
                sending.wait()
                for start in range(step, len(data), step):
                    time.sleep(pause)  # pacing the upload, not synchronisation
                    sock.sendall(data[start : start + step])
                answer = sock.recv(65536)
            outcomes[index] = answer.split(b"\r\n")[0].decode() if answer else "closed"
        except OSError as error:
            outcomes[index] = repr(error)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    sending.wait()  # every upload is under way
    time.sleep(1)  # then the stop comes, as a platform's would, mid-upload
    stopped = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a client hangs"
    assert server.proc.wait(15) == 0, server.log()
    assert time.monotonic() - stopped < 3 + 10

    landed = {i for i, outcome in outcomes.items() if outcome == "HTTP/1.1 200 "}
    assert len(outcomes) == 20 and landed and len(landed) < 20, outcomes
    for index in range(20):
        stored = upload_dir / f"u{index}.bin"
        if index in landed or stored.exists():
            assert stored.read_bytes() == payloads[index], index
    assert {p.name for p in leftovers(upload_dir)} <= {f"u{i}.bin" for i in range(20)}
    assert "Traceback" not in _without_cancelled_connections(server.log()), server.log()


def _without_cancelled_connections(log: str) -> str:
    """The log less what Python prints for each connection Hypercorn cancels
    at the end of its graceful timeout, until CPython gh-113538's fix (in
    3.13, not in 3.11.7 or 3.12.1): asyncio's StreamReaderProtocol callback
    calls exception() on the cancelled task. Nothing of the app's."""
    noise = re.compile(
        r"Exception in callback StreamReaderProtocol\.connection_made.*?\n"
        r"asyncio\.exceptions\.CancelledError\n",
        re.DOTALL,
    )
    return noise.sub("", log)
