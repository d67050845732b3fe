"""Server processes for the benches: one server (and every worker it spawns)
in its own process group on a loopback port, stopped with SIGTERM, then
SIGKILL, whatever happens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process group on a free loopback port."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: we stop all its workers
            )
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server did not start:\n{self.log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)

    def processes(self) -> list[psutil.Process]:
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def workers(self) -> list[psutil.Process]:
        """The processes that serve: Hypercorn's spawned workers, or uvicorn itself."""
        procs = self.processes()
        spawned = [p for p in procs[1:] if "resource_tracker" not in " ".join(_cmdline(p))]
        return spawned or procs[:1]

    def busiest_worker_share(self) -> float:
        """The share of established connections held by the busiest worker."""
        counts = []
        for p in self.workers():
            try:
                counts.append(sum(c.status == "ESTABLISHED" for c in p.net_connections()))
            except psutil.Error:
                pass
        return max(counts) / sum(counts) if counts and sum(counts) else 0.0

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self.workers():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers of the group
        if self.proc.poll() is None:
            self.proc.wait(5)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


NGINX = "/usr/sbin/nginx"

# docs/how-to/scale-out.md's recipe, on loopback, with everything in one directory
_NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
    upstream flet {{
        hash $cookie_flet_client consistent;
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://flet;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_read_timeout 1h;
            proxy_next_upstream error timeout http_503;
        }}
    }}
}}
"""


class Nginx:
    """nginx (a master and one worker) in front of loopback ports, hashing on
    the ``flet_client`` cookie; :meth:`route_to` changes its servers as an
    endpoints controller does (a reload: open connections stay where they are)."""

    def __init__(self, directory: Path, ports: list[int]) -> None:
        self.directory = directory
        self.port = free_port()
        self.conf = directory / "nginx.conf"
        self._write(ports)
        command = [NGINX, "-p", str(directory), "-c", str(self.conf)]
        log = open(directory / "nginx.out", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not start: {self.error_log()[-2000:]}") from None
                time.sleep(0.05)

    def _write(self, ports: list[int]) -> None:
        servers = "\n".join(f"        server 127.0.0.1:{port};" for port in ports)
        self.conf.write_text(
            _NGINX_CONF.format(tmp=self.directory, port=self.port, servers=servers)
        )

    def route_to(self, ports: list[int]) -> None:
        """Reload with ``ports``; returns once the old worker stopped taking
        connections (it keeps those it has: open WebSockets stay)."""
        shutting = self.error_log().count("gracefully shutting down")
        self._write(ports)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.error_log().count("gracefully shutting down") == shutting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not reload: {self.error_log()[-2000:]}")
            time.sleep(0.02)

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # fast: open WebSockets would hold a graceful stop
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
