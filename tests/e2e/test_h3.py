"""HTTP/3 against a real Hypercorn: QUIC over UDP on loopback (the h3 extra,
aioquic), with a certificate made by the test. A small aioquic client fetches
the patched index and a brotli-compressed file over one QUIC connection; the
TCP side advertises the QUIC port with Alt-Svc.

With a QUIC socket, Hypercorn (0.18) alone waits out its whole graceful
timeout on SIGTERM: its UDPServer only looks at the shutdown flag after the
next datagram. quart_flet.asgi.shutdown wakes it, so the server stops at once."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
from conftest import Certificate, require_service, start_tls_hypercorn
from flet_web import get_package_web_dir

try:
    from aioquic.asyncio import connect
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import ConnectionTerminated, QuicEvent
except ImportError:
    HAVE_AIOQUIC = False
    QuicConnectionProtocol = object
else:
    HAVE_AIOQUIC = True

pytestmark = pytest.mark.server

WEB = Path(get_package_web_dir())
GRACEFUL_TIMEOUT = 10  # long: stopping must not wait for it


class H3Client(QuicConnectionProtocol):  # type: ignore[misc,valid-type]
    """GET over HTTP/3, as in aioquic's examples/http3_client.py, trimmed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.streams: dict[int, tuple[asyncio.Future[None], dict[bytes, bytes], bytearray]] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            for done, _, _ in self.streams.values():
                if not done.done():
                    done.set_exception(ConnectionError(event.reason_phrase))
        for h3_event in self.h3.handle_event(event):
            if not isinstance(h3_event, (HeadersReceived, DataReceived)):
                continue
            done, headers, body = self.streams[h3_event.stream_id]
            if isinstance(h3_event, HeadersReceived):
                headers.update(h3_event.headers)
            else:
                body += h3_event.data
            if h3_event.stream_ended and not done.done():
                done.set_result(None)

    async def get(self, path: str, **extra: str) -> tuple[int, dict[bytes, bytes], bytes]:
        stream_id = self._quic.get_next_available_stream_id()
        request = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"127.0.0.1"),
            (b":path", path.encode()),
            *((k.replace("_", "-").encode(), v.encode()) for k, v in extra.items()),
        ]
        done = asyncio.get_running_loop().create_future()
        self.streams[stream_id] = (done, {}, bytearray())
        self.h3.send_headers(stream_id, request, end_stream=True)
        self.transmit()
        await asyncio.wait_for(done, 15)
        _, headers, body = self.streams.pop(stream_id)
        return int(headers[b":status"]), headers, bytes(body)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_static_files_over_h3(hypercorn: Any, tls: Certificate) -> None:
    require_service("aioquic", HAVE_AIOQUIC, 'pip install -e ".[h3]"')
    quic_port = free_udp_port()
    server = start_tls_hypercorn(
        hypercorn,
        tls,
        "examples.counter:app",  # with the toml's uvloop worker
        "--quic-bind",
        f"127.0.0.1:{quic_port}",
        "--graceful-timeout",
        str(GRACEFUL_TIMEOUT),
    )
    context = tls.client_context()

    async with httpx.AsyncClient(http2=True, verify=context, base_url=server.url) as client:
        over_tcp = await client.get("/")
    assert over_tcp.http_version == "HTTP/2"
    assert f'h3=":{quic_port}"; ma=3600' in over_tcp.headers.get_list("alt-svc")

    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    configuration.load_verify_locations(cafile=str(tls.ca_file))
    async with (
        asyncio.timeout(30),  # no hang if UDP is dropped: connect() waits for the handshake
        connect(
            "127.0.0.1", quic_port, configuration=configuration, create_protocol=H3Client
        ) as quic,
    ):
        assert isinstance(quic, H3Client)
        (status, headers, index), (js_status, js_headers, js) = await asyncio.gather(
            quic.get("/"), quic.get("/flutter.js", accept_encoding="br")
        )
    assert status == 200
    assert headers[b"cache-control"] == b"private, no-cache"  # a new browser: its id too
    assert '<base href="/">' in index.decode()
    assert js_status == 200
    assert js_headers[b"content-encoding"] == b"br"
    assert js_headers[b"vary"] == b"Accept-Encoding"
    original = (WEB / "flutter.js").read_bytes()  # as on disk (the bootstrap is patched)
    assert len(js) < len(original)
    assert brotli.decompress(js) == original

    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    returncode = await asyncio.to_thread(server.proc.wait, GRACEFUL_TIMEOUT + 5)
    elapsed = time.monotonic() - started
    log = server.log()
    assert returncode == 0, log
    assert elapsed < 3, (elapsed, log)  # not the graceful timeout
    assert '"GET / 3" 200' in log  # Hypercorn's access log saw HTTP/3
    for bad in ("Task was destroyed", "Traceback", "Exception in", "ERROR"):
        assert bad not in log, log
