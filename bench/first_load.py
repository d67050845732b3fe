"""First and repeat visit of the counter app in headless Chromium: ours
(Hypercorn, TLS + HTTP/2, compressed client) against the official integration
(uvicorn + flet_web.fastapi, no_cdn=True), renderer auto, both over https with
the same test certificate, on loopback and throttled to 10 Mbit/s through the
DevTools protocol. Each runs with its default headers: the official forces COOP
same-origin + COEP require-corp, ours sends COOP same-origin + COEP
credentialless (both pages cross-origin isolated, skwasm multi-threaded).
Prints medians of N runs and our/official ratios.

Run: python -m bench.first_load [--runs 3] [--ours-isolation false]

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
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quart_flet.compression import variant_store  # noqa: E402

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
NETWORKS = {"loopback": None, "10 Mbit/s": {"latency": 20, "throughput": 10 * MBIT}}


@dataclass
class Visit:
    bytes: int
    requests: int
    seconds: float  # first text, timed in the page
    isolated: bool
    polled: float  # first text as Playwright's polling wait saw it


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
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy()
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


async def visit(page: Any, cdp: Any, url: str) -> Visit:
    sizes: dict[str, float] = {}
    cdp.on(
        "Network.loadingFinished",
        lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]),
    )
    started = time.perf_counter()
    await page.goto(url)
    await page.get_by_text("Counter:", exact=True).wait_for(timeout=180_000)
    polled = time.perf_counter() - started
    await page.get_by_text("0", exact=True).wait_for(timeout=30_000)
    await page.wait_for_load_state("networkidle")
    isolated = bool(await page.evaluate("window.crossOriginIsolated"))
    in_page = await page.evaluate("window.__firstText ?? null")
    seconds = in_page / 1000 if in_page is not None else polled
    return Visit(int(sum(sizes.values())), len(sizes), seconds, isolated, polled)


async def measure(browser: Any, url: str, network: dict[str, float] | None) -> tuple[Visit, Visit]:
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


async def run(runs: int, ours_isolation: str | None) -> None:
    from playwright.async_api import async_playwright

    store = variant_store(Path(__import__("flet_web").get_package_web_dir()))
    load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    await asyncio.to_thread(store.build)  # compressed variants: once per flet-web build
    print(f"compressed client ready in {time.monotonic() - started:.1f} s ({store.cache_dir})")

    workdir = Path(tempfile.mkdtemp(prefix="first_load_"))
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
    port = free_port()
    urls["ours"] = f"https://127.0.0.1:{port}/"
    servers["ours"] = start(
        [sys.executable, "-m", "hypercorn", "examples.counter:app",
         "--config", str(ROOT / "examples/hypercorn.toml"), "--bind", f"127.0.0.1:{port}",
         "--certfile", str(cert_file), "--keyfile", str(key_file), "--access-logfile", "/dev/null"],
        urls["ours"], context, workdir / "ours.log", ours_env,
    )  # fmt: skip
    port = free_port()
    urls["official"] = f"https://127.0.0.1:{port}/"
    servers["official"] = start(
        [sys.executable, "-m", "uvicorn", "bench.official_counter:app", "--host", "127.0.0.1",
         "--port", str(port), "--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file),
         "--log-level", "warning", "--ws", "websockets"],
        urls["official"], context, workdir / "official.log",
    )  # fmt: skip
    results: dict[tuple[str, str], list[tuple[Visit, Visit]]] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki}"],
            )
            try:
                for network_name, network in NETWORKS.items():
                    for _ in range(runs):  # interleaved, so drift hits both alike
                        for name in ("official", "ours"):
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
        for proc in servers.values():
            proc.terminate()
            proc.wait(15)

    def picked(name: str, network: str, pick: Any) -> list[float]:
        return [pick(r) for r in results[(name, network)]]

    isolated = {
        name: sorted({"isolated" if r[0].isolated else "not isolated" for r in rs})
        for (name, _), rs in results.items()
    }
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmedians of {runs} runs, renderer auto, https (ours: HTTP/2; official: HTTP/1.1)")
    print(f"pages: {isolated}; load average at the start {load_at_start}, at the end {load}")
    print(f"on {os.cpu_count()} cores; [min-max]; 'faster' counts the rounds ours was ahead")
    print(f"{'':30}{'official':>24}{'ours':>24}{'ours/official':>15}")
    rows = [
        ("first-visit bytes (MB)", "loopback", lambda r: r[0].bytes / 1e6, 0.30),
        ("repeat-visit bytes (kB)", "loopback", lambda r: r[1].bytes / 1e3, 0.02),
        ("first text, loopback (s)", "loopback", lambda r: r[0].seconds, 1.0),
        ("repeat text, loopback (s)", "loopback", lambda r: r[1].seconds, 1.0),
        ("first text, 10 Mbit/s (s)", "10 Mbit/s", lambda r: r[0].seconds, 0.45),
        ("repeat text, 10 Mbit/s (s)", "10 Mbit/s", lambda r: r[1].seconds, None),
        ("  polled: first, loopback", "loopback", lambda r: r[0].polled, None),
        ("  polled: repeat, loopback", "loopback", lambda r: r[1].polled, None),
    ]
    for label, network, pick, target in rows:
        theirs, ours = picked("official", network, pick), picked("ours", network, pick)
        official, mine = statistics.median(theirs), statistics.median(ours)
        ratio = mine / official if official else float("nan")
        verdict = (
            "" if target is None else ("  ok" if ratio <= target else f"  MISSED <= {target:.0%}")
        )
        faster = sum(o < t for o, t in zip(ours, theirs, strict=True))
        spread = [f"{official:7.2f} [{min(theirs):.2f}-{max(theirs):.2f}]"]
        spread.append(f"{mine:7.2f} [{min(ours):.2f}-{max(ours):.2f}]")
        print(
            f"{label:30}{spread[0]:>24}{spread[1]:>24}{ratio:14.1%}{verdict}"
            f"  faster {faster}/{len(ours)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--ours-isolation",
        choices=["credentialless", "require-corp", "false"],
        help="FLET_CROSS_ORIGIN_ISOLATION for our server (default: its default, credentialless)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.ours_isolation))


if __name__ == "__main__":
    main()
