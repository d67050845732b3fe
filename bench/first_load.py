"""First and repeat visit of the counter app in headless Chromium: ours
(Hypercorn, TLS + HTTP/2, compressed client) against the official integration
(uvicorn + flet_web.fastapi, no_cdn=True), renderer auto, both over https with
the same test certificate, on loopback and throttled to 10 Mbit/s through the
DevTools protocol. Each runs with its default headers: the official forces COOP
same-origin + COEP require-corp, ours sends COOP same-origin + COEP
credentialless (both pages cross-origin isolated, skwasm multi-threaded).
Prints medians of N runs and our/official ratios.

Run: python -m bench.first_load [--rounds 3] [--ours-isolation false]
     [--network loopback|"10 Mbit/s"] [--only ours|official] [--baseline DIR]
With --baseline (another checkout, e.g. a worktree of main) a third side,
"before", serves the same app from there, interleaved with the others.
Besides the medians it prints, and writes to the log dir (first_load.md,
first_load.json), the request waterfall of one first visit per side: each
request's start and end in ms since the index was requested, and its bytes.
From the main bench: run_first_load(rounds, log_dir) -> markdown.

"Time to first text" is from navigation start until the app's "Counter:" is
in Flutter's semantics DOM, timed in the page (performance.now() in a
MutationObserver). Playwright's own wait polls 0, 20, 50, 100, 100, then every
500 ms after page.goto returns (at the load event), so its time is late by up
to half a second depending on when the page's load event fell; the per-visit
lines print it as "polled" for comparison. Bytes are what crossed the network
(DevTools' encodedDataLength: headers and bodies, after compression).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quart_flet.client.compression import variant_store  # noqa: E402

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
ENABLE_SEMANTICS = """
new MutationObserver((_, obs) => {
  const el = document.querySelector('flt-semantics-placeholder');
  if (el) { obs.disconnect(); el.click(); }
}).observe(document, {childList: true, subtree: true});
"""
# When "Counter:" first shows in the semantics DOM, in ms since navigation start.
FIRST_TEXT = """
new MutationObserver((_, obs) => {
  const host = document.querySelector('flt-semantics-host');
  if (host && host.textContent.includes('Counter:')) {
    window.__firstText = performance.now();
    obs.disconnect();
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""
MBIT = 1_000_000 / 8
Network = dict[str, float]  # DevTools latency (ms) and throughput (bytes/s)
NETWORKS: dict[str, Network | None] = {
    "loopback": None,
    "10 Mbit/s": {"latency": 20, "throughput": 10 * MBIT},
}


@dataclass
class Visit:
    bytes: int
    requests: int
    seconds: float  # first text, timed in the page
    isolated: bool
    polled: float  # first text as Playwright's polling wait saw it
    waterfall: list[Fetch]


@dataclass
class Fetch:
    """One request of a visit, in ms since the document's request started."""

    url: str
    start: float
    end: float  # -1 while unfinished (the WebSocket)
    bytes: int
    protocol: str


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    command: list[str],
    url: str,
    context: ssl.SSLContext,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy()
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                response.read()
                coop = response.headers.get("Cross-Origin-Opener-Policy")
                coep = response.headers.get("Cross-Origin-Embedder-Policy")
            print(f"  {command[2]:24} COOP {coop}, COEP {coep}", flush=True)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{command[2]} did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


class Recorder:
    """The network events of one visit, from DevTools (CDP timestamps are
    seconds on one monotonic clock; wallTime ties the first one to the page's
    performance.timeOrigin)."""

    def __init__(self, cdp: Any) -> None:
        self.fetches: dict[str, Fetch] = {}
        self.base: float | None = None
        self.base_wall = 0.0
        self.sizes: dict[str, float] = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.webSocketWillSendHandshakeRequest", self._websocket)
        cdp.on("Network.webSocketHandshakeResponseReceived", self._websocket_open)
        cdp.on("Network.webSocketFrameSent", self._frame)
        cdp.on("Network.webSocketFrameReceived", self._frame)

    def _ms(self, timestamp: float) -> float:
        return (timestamp - (self.base or timestamp)) * 1000

    def _sent(self, event: dict[str, Any]) -> None:
        if self.base is None:
            self.base, self.base_wall = event["timestamp"], event["wallTime"]
        if event["requestId"] not in self.fetches:  # a redirect keeps the first start
            url = event["request"]["url"]
            self.fetches[event["requestId"]] = Fetch(url, self._ms(event["timestamp"]), -1, 0, "")

    def _response(self, event: dict[str, Any]) -> None:
        fetch = self.fetches.get(event["requestId"])
        if fetch is not None:
            fetch.protocol = event["response"].get("protocol", "")

    def _finished(self, event: dict[str, Any]) -> None:
        self.sizes[event["requestId"]] = event["encodedDataLength"]
        fetch = self.fetches.get(event["requestId"])
        if fetch is not None:
            fetch.end, fetch.bytes = self._ms(event["timestamp"]), int(event["encodedDataLength"])

    def _websocket(self, event: dict[str, Any]) -> None:
        url = event.get("request", {}).get("url", "ws")
        self.fetches["ws " + event["requestId"]] = Fetch(
            url, self._ms(event["timestamp"]), -1, 0, "ws"
        )

    def _websocket_open(self, event: dict[str, Any]) -> None:
        fetch = self.fetches.get("ws " + event["requestId"])
        if fetch is not None:
            fetch.end = self._ms(event["timestamp"])  # the handshake's answer

    def _frame(self, event: dict[str, Any]) -> None:
        fetch = self.fetches.get("ws " + event["requestId"])
        if fetch is not None:  # "bytes" of a WebSocket: its frames' payloads so far
            fetch.bytes += len(event["response"].get("payloadData", ""))


async def visit(page: Any, cdp: Any, url: str) -> Visit:
    recorder = Recorder(cdp)
    started = time.perf_counter()
    await page.goto(url, wait_until="commit")  # the load event also waits for preloads
    await page.get_by_text("Counter:", exact=True).wait_for(timeout=180_000)
    polled = time.perf_counter() - started
    await page.get_by_text("0", exact=True).wait_for(timeout=30_000)
    await page.wait_for_load_state("networkidle")
    isolated = bool(await page.evaluate("window.crossOriginIsolated"))
    in_page = await page.evaluate("window.__firstText ?? null")
    seconds = in_page / 1000 if in_page is not None else polled
    sizes = recorder.sizes
    waterfall = sorted(recorder.fetches.values(), key=lambda f: f.start)
    if in_page is not None:  # on the waterfall's clock: the page's origin vs the first request
        origin = await page.evaluate("performance.timeOrigin")
        text_ms = origin + in_page - recorder.base_wall * 1000
        waterfall.append(Fetch("(first text)", text_ms, text_ms, 0, ""))
    return Visit(int(sum(sizes.values())), len(sizes), seconds, isolated, polled, waterfall)


async def measure(browser: Any, url: str, network: Network | None) -> tuple[Visit, Visit]:
    context = await browser.new_context(viewport={"width": 800, "height": 600})
    try:
        page = await context.new_page()
        await page.add_init_script(ENABLE_SEMANTICS)
        await page.add_init_script(FIRST_TEXT)
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        if network:
            await cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": network["latency"],
                    "downloadThroughput": network["throughput"],
                    "uploadThroughput": network["throughput"],
                },
            )
        first = await visit(page, cdp, url)
        cdp2 = await context.new_cdp_session(page)
        await cdp.detach()
        await cdp2.send("Network.enable")
        if network:
            await cdp2.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": network["latency"],
                    "downloadThroughput": network["throughput"],
                    "uploadThroughput": network["throughput"],
                },
            )
        repeat = await visit(page, cdp2, url)
        return first, repeat
    finally:
        await context.close()


def short(url: str) -> str:
    """The waterfall's name for ``url``: its path without the version tokens."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return url[:40]
    path = re.sub(r"_v/[0-9a-f]{16}/", "", parts.path)
    host = "" if parts.hostname == "127.0.0.1" else f"{parts.hostname}"
    return (host + path)[-48:] or "/"


def waterfall_table(visit: Visit) -> list[str]:
    rows = ["| # | file | proto | start ms | end ms | kB |", "|---|---|---|---:|---:|---:|"]
    for number, fetch in enumerate(visit.waterfall, 1):
        end = "-" if fetch.end < 0 else f"{fetch.end:.0f}"
        if fetch.url == "(first text)":
            rows.append(f"| | **first text** | | {fetch.start:.0f} | | |")
            continue
        rows.append(
            f"| {number} | {short(fetch.url)} | {fetch.protocol} | {fetch.start:.0f} | {end} "
            f"| {fetch.bytes / 1e3:.1f} |"
        )
    return rows


async def serve_both(
    workdir: Path, ours_isolation: str | None, baseline: Path | None = None
) -> tuple[dict[str, subprocess.Popen[bytes]], dict[str, str], str]:
    """Both servers on one test certificate: (processes, urls, its SPKI pin);
    with ``baseline`` (another checkout of quart-flet) a third, "before",
    serving the same app from that checkout."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    der = (
        x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    servers: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    ours_env = os.environ.copy()  # our defaults unless --ours-isolation says otherwise
    ours_env.pop("FLET_CROSS_ORIGIN_ISOLATION", None)
    if ours_isolation is not None:
        ours_env["FLET_CROSS_ORIGIN_ISOLATION"] = ours_isolation
    try:
        port = free_port()
        urls["ours"] = f"https://127.0.0.1:{port}/"
        servers["ours"] = start(
            [sys.executable, "-m", "hypercorn", "examples.counter:app",
             "--config", str(ROOT / "examples/hypercorn.toml"), "--bind", f"127.0.0.1:{port}",
             "--certfile", str(cert_file), "--keyfile", str(key_file),
             "--access-logfile", "/dev/null"],
            urls["ours"], context, workdir / "ours.log", ours_env,
        )  # fmt: skip
        if baseline is not None:
            port = free_port()
            urls["before"] = f"https://127.0.0.1:{port}/"
            servers["before"] = start(
                [sys.executable, "-m", "hypercorn", "examples.counter:app",
                 "--config", str(baseline / "examples/hypercorn.toml"),
                 "--bind", f"127.0.0.1:{port}", "--certfile", str(cert_file),
                 "--keyfile", str(key_file), "--access-logfile", "/dev/null"],
                urls["before"], context, workdir / "before.log", ours_env, cwd=baseline,
            )  # fmt: skip
        port = free_port()
        urls["official"] = f"https://127.0.0.1:{port}/"
        servers["official"] = start(
            [sys.executable, "-m", "uvicorn", "bench.official_counter:app", "--host", "127.0.0.1",
             "--port", str(port), "--ssl-certfile", str(cert_file), "--ssl-keyfile",
             str(key_file), "--log-level", "warning", "--ws", "websockets"],
            urls["official"], context, workdir / "official.log",
        )  # fmt: skip
    except BaseException:
        stop(servers)
        raise
    return servers, urls, spki


def stop(servers: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in servers.values():
        proc.terminate()
    for proc in servers.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run_rounds(
    rounds: int,
    log_dir: Path,
    ours_isolation: str | None,
    networks: dict[str, Network | None],
    sides: tuple[str, ...] = ("official", "ours"),
    baseline: Path | None = None,
) -> str:
    from playwright.async_api import async_playwright

    store = variant_store(Path(__import__("flet_web").get_package_web_dir()))
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    await asyncio.to_thread(store.build)  # compressed variants: once per flet-web build
    print(f"compressed client ready in {time.monotonic() - started:.1f} s ({store.cache_dir})")
    log_dir.mkdir(parents=True, exist_ok=True)
    servers, urls, spki = await serve_both(log_dir, ours_isolation, baseline)
    if baseline is not None:
        sides = (*sides, "before")
    results: dict[tuple[str, str], list[tuple[Visit, Visit]]] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki}"],
            )
            try:
                for network_name, network in networks.items():
                    for _ in range(rounds):  # interleaved, so drift hits both alike
                        for name in sides:
                            result = await measure(browser, urls[name], network)
                            results.setdefault((name, network_name), []).append(result)
                            first, repeat = result
                            print(
                                f"  {name:8} {network_name:9} first {first.bytes / 1e6:6.2f} MB "
                                f"{first.requests:3} req {first.seconds:6.2f} s "
                                f"(polled {first.polled:5.2f}) | repeat "
                                f"{repeat.bytes / 1e3:8.1f} kB {repeat.seconds:5.2f} s "
                                f"(polled {repeat.polled:5.2f})"
                                f"{'' if first.isolated else ' (not isolated)'}",
                                flush=True,
                            )
            finally:
                await browser.close()
    finally:
        stop(servers)
    raw = {
        f"{name} {network}": [[asdict(first), asdict(repeat)] for first, repeat in visits]
        for (name, network), visits in results.items()
    }
    (log_dir / "first_load.json").write_text(json.dumps(raw, indent=1))
    if "official" not in sides or "ours" not in sides:  # a quick look: the slowest waterfall
        visits = results[(sides[-1], next(reversed(networks)))]
        slowest = max(visits, key=lambda r: r[0].seconds)[0]
        return "\n".join(waterfall_table(slowest)) + "\n"
    report = summary(results, rounds, load_at_start, networks)
    (log_dir / "first_load.md").write_text(report)
    return report


def summary(
    results: dict[tuple[str, str], list[tuple[Visit, Visit]]],
    rounds: int,
    load_at_start: str,
    networks: dict[str, Network | None],
) -> str:
    """Markdown: the medians and ratios, then one first visit's waterfall per side."""

    def picked(name: str, network: str, pick: Any) -> list[float]:
        return [pick(r) for r in results[(name, network)]]

    isolated = {
        name: sorted({"isolated" if r[0].isolated else "not isolated" for r in rs})
        for (name, _), rs in results.items()
    }
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    before = any(name == "before" for name, _ in results)
    slow = "10 Mbit/s" if "10 Mbit/s" in networks else next(iter(networks))
    lines = [
        f"First load, medians of {rounds} rounds, renderer auto, https "
        "(ours: HTTP/2; official: HTTP/1.1)",
        "",
        f"pages: {isolated}; load average at the start {load_at_start}, at the end {load}; "
        f"{os.cpu_count()} cores; [min-max]; 'ahead' counts the rounds ours was faster",
        "",
        "| | official | ours | ours/official | target | ours ahead |"
        + (" before (baseline) | ours/before |" if before else ""),
        "|---|---:|---:|---:|---|---:|" + ("---:|---:|" if before else ""),
    ]
    rows = [
        ("first-visit bytes (MB)", slow, lambda r: r[0].bytes / 1e6, 0.30),
        ("first-visit requests", slow, lambda r: r[0].requests, None),
        ("repeat-visit bytes (kB)", slow, lambda r: r[1].bytes / 1e3, 0.02),
        ("first text, loopback (s)", "loopback", lambda r: r[0].seconds, 1.0),
        ("repeat text, loopback (s)", "loopback", lambda r: r[1].seconds, 1.0),
        ("first text, 10 Mbit/s (s)", "10 Mbit/s", lambda r: r[0].seconds, 0.40),
        ("repeat text, 10 Mbit/s (s)", "10 Mbit/s", lambda r: r[1].seconds, None),
    ]
    for label, network, pick, target in rows:
        if network not in networks:
            continue
        theirs, ours = picked("official", network, pick), picked("ours", network, pick)
        official, mine = statistics.median(theirs), statistics.median(ours)
        ratio = mine / official if official else float("nan")
        verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
        goal = "" if target is None else f"<= {target:.0%} {verdict}"
        ahead = sum(o < t for o, t in zip(ours, theirs, strict=True))
        row = (
            f"| {label} | {official:.2f} [{min(theirs):.2f}-{max(theirs):.2f}] "
            f"| {mine:.2f} [{min(ours):.2f}-{max(ours):.2f}] | {ratio:.1%} | {goal} "
            f"| {ahead}/{len(ours)} |"
        )
        if before:
            old = picked("before", network, pick)
            median = statistics.median(old)
            row += f" {median:.2f} [{min(old):.2f}-{max(old):.2f}] | {mine / median:.1%} |"
        lines.append(row)
    for name in ("official", "ours", *(["before"] if before else [])):
        visits = results[(name, slow)]
        # the round whose first text is the median one
        chosen = sorted(visits, key=lambda r: r[0].seconds)[len(visits) // 2][0]
        lines += [
            "",
            f"Waterfall, {name}, first visit at {slow} (the median round: first text "
            f"{chosen.seconds:.2f} s, {chosen.bytes / 1e6:.2f} MB in {chosen.requests} requests)",
            "",
            *waterfall_table(chosen),
        ]
    return "\n".join(lines) + "\n"


def run_first_load(rounds: int, log_dir: Path) -> str:
    """First and repeat visits of both sides, ``rounds`` rounds on loopback
    and at 10 Mbit/s; markdown (the table and both waterfalls), also written
    to ``log_dir``/first_load.md with the raw visits in first_load.json."""
    return asyncio.run(run_rounds(rounds, log_dir, None, NETWORKS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", "--rounds", dest="rounds", type=int, default=3)
    parser.add_argument(
        "--ours-isolation",
        choices=["credentialless", "require-corp", "false"],
        help="FLET_CROSS_ORIGIN_ISOLATION for our server (default: its default, credentialless)",
    )
    parser.add_argument(
        "--network",
        choices=[*NETWORKS, "all"],
        default="all",
        help="only this network (default: loopback and 10 Mbit/s)",
    )
    parser.add_argument("--only", choices=["ours", "official"], help="one side, its waterfall")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of quart-flet (a git worktree of main, say) served as a third "
        "side, 'before', to see what a change gains",
    )
    parser.add_argument("--log-dir", type=Path, help="default: bench/results/<time>")
    args = parser.parse_args()
    log_dir = args.log_dir or ROOT / "bench" / "results" / time.strftime("first-load-%Y%m%d-%H%M%S")
    networks = NETWORKS if args.network == "all" else {args.network: NETWORKS[args.network]}
    sides = (args.only,) if args.only else ("official", "ours")
    report = run_rounds(args.rounds, log_dir, args.ours_isolation, networks, sides, args.baseline)
    print(asyncio.run(report))
    print(f"written to {log_dir}")


if __name__ == "__main__":
    main()
