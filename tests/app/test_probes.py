"""Liveness, readiness and Prometheus metrics: the options' routes, the
blocks on routes of the app's own, and readiness turning 503 under a real
Hypercorn receiving SIGTERM before the Flet sockets close."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest
from conftest import (
    REGISTER_CLIENT,
    FletTestClient,
    decode,
    register_frame,
    start_counter,
    wait_for_log,
)
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart, Response
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from examples.counter import main
from quart_flet import FletApp, OptionError, QuartFlet, flet_blueprint


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "worker"))
            key = (sample.name, labels)
            found[key] = found.get(key, 0.0) + sample.value  # summed over workers
    return found


def probe_app(**opts: Any) -> Quart:
    app = Quart(__name__)
    QuartFlet(app, **opts)
    app.register_blueprint(flet_blueprint(main))
    return app


async def test_probes_answer_json_and_readiness_follows_the_lifespan() -> None:
    app = probe_app(health_path="/healthz", ready_path="/readyz")
    client = app.test_client()
    assert (await client.get("/readyz")).status_code == 503  # not serving yet
    async with app.test_app() as test_app:
        client = test_app.test_client()
        live = await client.get("/healthz")
        body = await live.get_json()
        assert live.status_code == 200 and body["status"] == "ok"
        assert body["loop_lag_seconds"] >= 0
        assert set(body["pool"]) == {"threads", "busy", "queued"}
        async with client.websocket("/ws") as ws:
            await start_counter(FletTestClient(ws))
            ready = await (await client.get("/readyz")).get_json()
            assert ready["sessions"] == {"live": 1, "held": 0} and ready["connections"] == 1
        assert "redis" not in ready
    stopped = await client.get("/readyz")
    assert stopped.status_code == 503 and (await stopped.get_json())["status"] == "stopping"


async def test_the_blocks_serve_from_routes_of_the_apps_own() -> None:
    app = Quart(__name__)
    QuartFlet(app)

    @app.get("/internal/alive")
    async def alive() -> Response:
        return await QuartFlet.liveness()

    @app.get("/internal/ready")
    async def ready() -> Response:
        return await QuartFlet.readiness()

    @app.get("/internal/metrics")
    async def metrics() -> Response:
        return await QuartFlet.metrics()

    app.register_blueprint(flet_blueprint(main))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/internal/alive")).status_code == 200
        assert (await client.get("/internal/ready")).status_code == 200
        scrape = await client.get("/internal/metrics")
        assert scrape.content_type.startswith("text/plain")
        assert ("quart_flet_ready", ()) in samples(await scrape.get_data(as_text=True))
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
        assert not endpoints & {"quart_flet_liveness", "quart_flet_readiness"}  # off unless asked


async def test_metrics_count_sessions_frames_handlers_and_closes() -> None:
    app = probe_app(metrics_path="/metrics")
    async with app.test_app() as test_app:
        client = test_app.test_client()
        before = samples(await (await client.get("/metrics")).get_data(as_text=True))
        async with client.websocket("/ws") as ws:
            flet = FletTestClient(ws)
            button = await start_counter(flet)
            await flet.click(button)
            await flet.receive()
            during = samples(await (await client.get("/metrics")).get_data(as_text=True))
        assert during[("quart_flet_sessions", (("state", "live"),))] == 1
        assert during[("quart_flet_connections", ())] == 1

        def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
            return during[(name, labels)] - before.get((name, labels), 0.0)

        assert grew("quart_flet_registrations_total") == 1
        assert grew("quart_flet_frames_total", (("direction", "in"),)) >= 2  # register, click
        assert grew("quart_flet_bytes_total", (("direction", "out"),)) > 0
        latency = ("quart_flet_handler_latency_seconds_count", (("kind", "async"),))
        sync = ("quart_flet_handler_latency_seconds_count", (("kind", "sync"),))
        assert during[latency] + during[sync] - before.get(latency, 0) - before.get(sync, 0) >= 1
        assert during[("quart_flet_pool_threads", ())] >= 1


def test_metrics_routes_are_checked_options(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OptionError, match="health_path"):
        QuartFlet(Quart(__name__), health_path="healthz")
    with pytest.raises(OptionError, match="ready_path and metrics_path"):
        QuartFlet(Quart(__name__), ready_path="/x", metrics_path="/x")
    with pytest.raises(OptionError, match="app-wide"):
        FletApp(main, health_path="/healthz")  # type: ignore[call-arg]
    monkeypatch.setenv("FLET_READY_PATH", "/from-env")
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main))  # a QuartFlet with defaults, and the variable
    assert "quart_flet_readiness" in {rule.endpoint for rule in app.url_map.iter_rules()}


@pytest.mark.server
@pytest.mark.parametrize("workers", ["0", "2"])
async def test_readiness_turns_503_on_sigterm_before_the_flet_sockets_close(
    hypercorn: Any, workers: str
) -> None:
    server = hypercorn("tests.apps.probes:app", "--graceful-timeout", "3", "--workers", workers)
    wait_for_log(server, "Running on", max(int(workers), 1))
    ws = await connect(server.url.replace("http", "ws") + "/ws")
    await ws.send(register_frame())
    assert decode(await ws.recv())[0] == REGISTER_CLIENT
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        in_flight = asyncio.create_task(http.get("/_probe/ready-once-stopping"))
        await asyncio.to_thread(wait_for_log, server, "probe waiting for the stop")
        server.proc.send_signal(signal.SIGTERM)
        answer = await in_flight
    assert answer.status_code == 503, server.log()
    assert answer.json()["status"] == "stopping"
    # readiness was already off when the worker began closing its Flet sockets
    assert set(answer.headers["X-Ready-When-Sockets-Closed"].split(",")) == {"False"}
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1001
    assert await asyncio.to_thread(server.proc.wait, 10) == 0


@pytest.mark.server
async def test_a_scrape_of_one_worker_counts_every_worker(hypercorn: Any) -> None:
    server = hypercorn("tests.apps.probes:app", "--workers", "2")
    wait_for_log(server, "Running on", 2)
    sockets = []
    for _ in range(4):
        ws = await connect(server.url.replace("http", "ws") + "/ws")
        await ws.send(register_frame())
        assert decode(await ws.recv())[0] == REGISTER_CLIENT
        sockets.append(ws)
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        while True:
            text = (await http.get("/metrics")).text
            workers = {
                sample.labels["worker"]
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            found = samples(text)
            if len(workers) == 2 and found[("quart_flet_connections", ())] == 4:
                break
            assert time.monotonic() < deadline, text
            await asyncio.sleep(0.1)  # bounded polling: snapshots are at most 1 s old
    assert found[("quart_flet_sessions", (("state", "live"),))] == 4
    assert found[("quart_flet_registrations_total", ())] == 4
    for ws in sockets:
        await ws.close()
