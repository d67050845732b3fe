"""``quart-flet run --workers N`` (issue 24): a worker that dies is replaced
while the others keep their sessions, a reconnect reaches its session in
whichever worker holds it, a session whose worker died starts afresh at
once, and the server exits non-zero when its app cannot start or its workers
keep dying (Hypercorn's own --workers stops them all and exits 0)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port, wait_for_log
from runner import Command, command, run_to_end
from test_sticky import Browser
from test_worker_relay import new_tab

from quart_flet.cli.supervisor import CRASH_LIMIT

RUN = ["-m", "quart_flet.cli", "run", "tests.apps.supervised:app"]
RELAYED = "lives in another worker: relayed"


def gauges(metrics: str, prefix: str) -> dict[int, float]:
    """The values of one Prometheus series, by the worker label's pid."""
    found = {}
    for line in metrics.splitlines():
        if line.startswith(prefix) and 'state="held"' not in line:
            labels, value = line.rsplit(" ", 1)
            worker = labels.split('worker="', 1)[1].split('"', 1)[0]
            found[int(worker)] = float(value)
    return found


@pytest.mark.server
async def test_a_killed_worker_is_replaced_and_the_others_keep_their_sessions(
    tmp_path: Path,
) -> None:
    port = free_port()
    with command([*RUN, "--workers", "2", "--port", str(port)], tmp_path) as app:
        url = app.url().rstrip("/")
        assert app.lines[-1].endswith("with 2 workers (Ctrl-C to stop)")
        tabs: list[Browser] = []
        while len({tab.pid for tab in tabs}) < 2:  # the kernel picks the worker
            assert len(tabs) < 40, "every tab landed on one worker"
            tab = await new_tab(url)
            await tab.open()
            await tab.click("1")
            tabs.append(tab)
        doomed = tabs[-1].pid
        survivors = [tab for tab in tabs if tab.pid != doomed]
        lost = [tab for tab in tabs if tab.pid == doomed]

        os.kill(doomed, signal.SIGKILL)
        wait_for_log(
            app, f"worker {doomed} stopped (killed by SIGKILL); starting another", timeout=30
        )
        # the other worker's sessions never noticed: their sockets still answer
        for tab in survivors:
            await tab.click("2")
            tab.counter = "2"
        # and they resume from whichever worker the reconnect lands on,
        # relayed by the new worker to the one holding them
        relayed, reconnects = app.stderr().count(RELAYED), 0
        disconnects = dict.fromkeys((tab.session_id for tab in survivors), 0)
        while app.stderr().count(RELAYED) == relayed:
            assert reconnects < 30, "no reconnect landed on the new worker"
            tab = survivors[reconnects % len(survivors)]
            reconnects += 1
            count, before = tab.counter, tab.session_id
            await tab.close()
            disconnects[before] += 1
            wait_for_log(app, f"session {before} disconnected", disconnects[before], timeout=30)
            await tab.open(before)
            assert (tab.session_id, tab.counter) == (before, count)
            tab.counter = str(int(count) + 1)
            await tab.click(tab.counter)
        # a session of the dead worker starts afresh, at once
        for tab in lost:
            await tab.close()
            started = time.monotonic()
            old = tab.session_id
            await tab.open(old)
            assert tab.session_id != old and tab.counter == "0"
            assert tab.pid != doomed
            assert time.monotonic() - started < 5
        # every worker's metrics count each browser's socket and session
        # once, a relayed one too (each worker shares its numbers every
        # second: bounded polling until both workers' are fresh; counted
        # twice, the relayed socket would never let them add up)
        deadline = time.monotonic() + 15
        while True:
            metrics = httpx.get(url + "/metrics", timeout=10).text
            live = gauges(metrics, "quart_flet_sessions{")  # live, not held
            sockets = gauges(metrics, "quart_flet_connections{")
            if sorted(live) == sorted(sockets) and len(live) == 2 and doomed not in live:
                if sum(live.values()) == sum(sockets.values()) == len(tabs):
                    break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.2)

        assert app.interrupt() == 0
        assert app.rest_of_stdout().rstrip().endswith("quart-flet: stopped")
    assert "Traceback" not in app.stderr(), app.stderr()


@pytest.mark.server
def test_workers_that_keep_dying_stop_the_server_with_a_non_zero_status(tmp_path: Path) -> None:
    port = free_port()
    with command([*RUN, "--workers", "1", "--port", str(port)], tmp_path) as app:
        url = app.url()
        for death in range(1, CRASH_LIMIT + 1):
            with pytest.raises(httpx.TransportError):  # the worker dies mid-request
                httpx.post(url + "_exit", timeout=30)
            if death < CRASH_LIMIT:
                wait_for_log(app, "starting another", death, timeout=30)
        assert app.proc.wait(30) == 1
    assert f"{CRASH_LIMIT} workers died within 60 s" in app.stderr(), app.stderr()
    assert app.stderr().count("starting another") == CRASH_LIMIT - 1


def test_an_app_that_cannot_start_says_why_once_and_exits_non_zero() -> None:
    """The first worker starts alone: its one-line error, not one per worker."""
    args = ["-m", "quart_flet.cli", "run", "examples.counter", "--workers", "4", "--port", "0"]
    result = run_to_end(args, {"FLET_MAX_THREADS": "zero"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "error: quart-flet option max_threads (from FLET_MAX_THREADS): 'zero' is not a whole number"
    )


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--workers", "0"], {}, "error: quart-flet option --workers: '0' is not a whole number"),
        (
            [],
            {"WEB_CONCURRENCY": "many"},
            "error: quart-flet option --workers (from WEB_CONCURRENCY): 'many' is not",
        ),
        (["--workers", "2", "--reload"], {}, "error: quart-flet: --reload serves one process"),
    ],
)
def test_a_bad_workers_value_says_why(args: list[str], env: dict[str, str], line: str) -> None:
    result = run_to_end(["-m", "quart_flet.cli", "run", "examples.counter", *args], env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(line), result.stderr


def workers_of(app: Command) -> set[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker
    aside), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == app.proc.pid and b"resource_tracker" not in command:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.server
def test_a_replacement_killed_while_it_starts_is_one_more_death_not_an_outage(
    tmp_path: Path,
) -> None:
    port = free_port()
    with command([*RUN, "--workers", "2", "--port", str(port)], tmp_path) as app:
        url = app.url()
        wait_for_log(app, "Running on", 2, timeout=30)
        first = workers_of(app)
        doomed = min(first)
        os.kill(doomed, signal.SIGKILL)
        wait_for_log(
            app, f"worker {doomed} stopped (killed by SIGKILL); starting another", timeout=30
        )
        deadline = time.monotonic() + 10
        while not workers_of(app) - first:
            assert time.monotonic() < deadline, app.stderr()
            time.sleep(0.01)  # bounded polling for the replacement's pid
        (starting,) = workers_of(app) - first
        os.kill(starting, signal.SIGKILL)  # while it imports the app
        wait_for_log(
            app, f"worker {starting} stopped before it served (killed by SIGKILL)", timeout=30
        )
        wait_for_log(app, "Running on", 3, timeout=30)  # a third one serves
        assert httpx.get(url, timeout=10).status_code == 200
        assert len(workers_of(app)) == 2
        os.kill(app.proc.pid, signal.SIGHUP)  # the terminal went away: a graceful stop
        assert app.proc.wait(20) == 0
    assert "Traceback" not in app.stderr(), app.stderr()
