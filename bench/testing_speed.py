"""quart_flet.testing against Playwright + Chromium on the counter example:
one click's round trip (tap, then wait until the new count is on screen), and
a suite of N tests that each open the app, click once and see 1.

Run: python -m bench.testing_speed [--runs 3] [--tests 100] [--browser-tests 100]

The harness suite is a real pytest run (a generated test file, the plugin
loaded with -p), timed from the command to its exit and as pytest reports
it. The browser suite is what pytest-playwright does: one Chromium for the
run, a fresh context per test, the app served by Hypercorn. Playwright's
waits poll (0, 20, 50, 100, 100, then every 500 ms), which is part of what
a Playwright test costs. Prints medians of --runs runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
ENABLE_SEMANTICS = """
new MutationObserver((_, obs) => {
  const el = document.querySelector('flt-semantics-placeholder');
  if (el) { obs.disconnect(); el.click(); }
}).observe(document, {childList: true, subtree: true});
"""

FAB = 'flt-semantics[aria-label="Increment"] [role="button"]'  # a tooltip labels it

SUITE_TEST = """
import pytest

@pytest.mark.parametrize("n", range({tests}))
async def test_counter_counts(flet_user, n):
    await flet_user.tap(flet_user.find_by_tooltip("Increment"))
    await flet_user.should_see(flet_user.find_by_text("1"))
"""


async def harness_clicks(clicks: int) -> list[float]:
    from examples.counter import app
    from quart_flet.testing import FletHarness

    times: list[float] = []
    async with FletHarness(app) as harness:
        user = await harness.open_user()
        await user.should_see("Counter:")
        fab = user.find_by_tooltip("Increment")
        for n in range(1, clicks + 1):
            started = time.perf_counter()
            await user.tap(fab)
            await user.should_see(user.find_by_text(str(n)))
            times.append(time.perf_counter() - started)
    return times


def harness_suite(tests: int) -> tuple[float, float]:
    """(wall seconds of the pytest command, seconds pytest reports)."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "test_counter_suite.py").write_text(SUITE_TEST.format(tests=tests))
        Path(folder, "pytest.ini").write_text(
            "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
            "quart_flet_app = examples.counter:app\n"
        )
        command = [sys.executable, "-m", "pytest", "-q", "-p", "quart_flet.testing.plugin"]
        started = time.perf_counter()
        result = subprocess.run(
            [*command, "-p", "no:cacheprovider", "test_counter_suite.py"],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    reported = re.search(rf"{tests} passed in ([0-9.]+)s", result.stdout)
    if result.returncode != 0 or reported is None:
        raise SystemExit(f"the harness suite failed:\n{result.stdout}\n{result.stderr}")
    return wall, float(reported.group(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "examples.counter:app", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:  # bounded polling until the port answers
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)


async def browser_runs(url: str, clicks: int, tests: int) -> tuple[list[float], float]:
    """(click round trips, seconds for ``tests`` open-click-see tests)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 800, "height": 600})
            page = await context.new_page()
            await page.add_init_script(ENABLE_SEMANTICS)
            await page.goto(url)
            await page.get_by_text("Counter:", exact=True).wait_for(timeout=60_000)
            fab = page.locator(FAB)
            times: list[float] = []
            for n in range(1, clicks + 1):
                started = time.perf_counter()
                await fab.click()
                await page.get_by_text(str(n), exact=True).wait_for(timeout=10_000)
                times.append(time.perf_counter() - started)
            await context.close()
            started = time.perf_counter()
            for _ in range(tests):
                context = await browser.new_context(viewport={"width": 800, "height": 600})
                page = await context.new_page()
                await page.add_init_script(ENABLE_SEMANTICS)
                await page.goto(url)
                await page.locator(FAB).click(timeout=60_000)
                await page.get_by_text("1", exact=True).wait_for(timeout=10_000)
                await context.close()
            return times, time.perf_counter() - started
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--browser-tests", type=int, default=100)
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--browser-clicks", type=int, default=20)
    args = parser.parse_args()

    click_medians, walls, reported = [], [], []
    for _ in range(args.runs):
        click_medians.append(statistics.median(asyncio.run(harness_clicks(args.clicks))))
        wall, inside = harness_suite(args.tests)
        walls.append(wall)
        reported.append(inside)
    print(f"harness: click round trip {statistics.median(click_medians) * 1000:.2f} ms (median)")
    print(
        f"harness: {args.tests}-test suite {statistics.median(walls):.2f} s wall "
        f"({statistics.median(reported):.2f} s as pytest reports it)"
    )

    proc, url = start_server()
    try:
        browser_clicks, browser_suites = [], []
        for _ in range(args.runs):
            times, suite = asyncio.run(browser_runs(url, args.browser_clicks, args.browser_tests))
            browser_clicks.append(statistics.median(times))
            browser_suites.append(suite)
    finally:
        proc.terminate()
        proc.wait(10)
    browser_click = statistics.median(browser_clicks)
    browser_suite = statistics.median(browser_suites)
    print(f"chromium: click round trip {browser_click * 1000:.1f} ms (median)")
    print(
        f"chromium: {args.browser_tests}-test suite {browser_suite:.1f} s (browser launched once)"
    )
    harness_click = statistics.median(click_medians)
    per_test_harness = statistics.median(walls) / args.tests
    per_test_browser = browser_suite / args.browser_tests
    print(f"ratio: click {browser_click / harness_click:.0f}x faster through the harness")
    print(f"ratio: per test {per_test_browser / per_test_harness:.0f}x faster through the harness")


if __name__ == "__main__":
    main()
