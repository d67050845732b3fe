"""One large upload streamed through a real Hypercorn server; prints how much
the server's resident memory grows (issue 4: target < 50 MB for 1 GiB).

Run: python bench/upload_rss.py [--size-mib 1024] [-- extra hypercorn args, e.g. -k uvloop]

The body is generated on the fly (one random MiB sent over and over), never
stored; the server is ``examples.upload:app`` with a temporary upload_dir. RSS is
VmRSS from /proc/<pid>/status of the Hypercorn worker process, sampled every
20 ms while the upload runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quart_flet.http.uploads import upload_serializer  # noqa: E402

MiB = 1024 * 1024
KEY = "bench-upload-key"


def vm_rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def worker_pid(pid: int) -> int:
    """Hypercorn serves from a worker process it starts: measure that one."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    # multiprocessing also starts a resource tracker; the worker runs spawn_main
    workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    if len(workers) != 1:
        raise RuntimeError(f"expected one hypercorn worker under {pid}, found {workers}")
    return int(workers[0])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(upload_dir: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "FLET_UPLOAD_DIR": str(upload_dir), "FLET_SECRET_KEY": KEY}
    command = [sys.executable, "-m", "hypercorn", "examples.upload:app"]
    proc = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"hypercorn did not start: {proc.stderr.read()!r}") from None
            time.sleep(0.1)


def body(size: int) -> Iterator[bytes]:
    chunk = os.urandom(MiB)
    sent = 0
    while sent < size:
        piece = chunk[: min(MiB, size - sent)]
        sent += len(piece)
        yield piece


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("hypercorn_args", nargs="*", help="extra hypercorn arguments")
    args = parser.parse_args()
    size = args.size_mib * MiB

    with tempfile.TemporaryDirectory(prefix="quart_flet_bench_") as tmp:
        upload_dir = Path(tmp)
        proc, url = start_server(upload_dir, args.hypercorn_args)
        try:
            # one small upload first, so lazily imported code is already resident
            token = upload_serializer([KEY], "flet").dumps(["warmup.bin", 600])
            httpx.put(f"{url}/upload?f=warmup.bin&e=600&s={token}", content=b"x").raise_for_status()
            worker = worker_pid(proc.pid)
            baseline = vm_rss(worker)
            peak = baseline
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.wait(0.02):
                    peak = max(peak, vm_rss(worker))

            sampler = threading.Thread(target=sample)
            sampler.start()
            token = upload_serializer([KEY], "flet").dumps(["big.bin", 600])
            started = time.perf_counter()
            try:
                response = httpx.put(
                    f"{url}/upload?f=big.bin&e=600&s={token}",
                    content=body(size),
                    headers={"content-length": str(size)},
                    timeout=600,
                )
            finally:
                done.set()
                sampler.join()
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            final = vm_rss(worker)
            stored = (upload_dir / "big.bin").stat().st_size
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    assert stored == size, f"stored {stored} bytes of {size}"
    print(f"upload: {size / MiB:.0f} MiB in {elapsed:.1f} s ({size / MiB / elapsed:.0f} MiB/s)")
    print(
        f"server RSS: baseline {baseline / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB, "
        f"after {final / MiB:.1f} MiB"
    )
    growth = (peak - baseline) / 1e6
    print(f"server RSS growth (peak - baseline): {growth:.1f} MB (target < 50 MB)")
    sys.exit(0 if growth < 50 else 1)


if __name__ == "__main__":
    main()
