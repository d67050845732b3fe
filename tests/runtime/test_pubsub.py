"""page.pubsub in one process: flet's PubSubHub semantics, handlers run where
issue 3 says (sync on the app's pool, async on the loop, in the subscriber's
context), per-session order, and flet's own hub left alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import flet as ft
import pytest
from apps.chat import main as chat_main
from conftest import UPDATE_CONTROL_PROPS, FletTestClient, contains, encode, find_controls
from flet.controls.exceptions import FletPageDisconnectedException
from flet.pubsub.pubsub_hub import PubSubHub
from quart import Quart

from quart_flet import flet_blueprint, pubsub_hub
from quart_flet.runtime.pubsub import FIRST_SLICE, MAX_STEPS, FletPubSub, _try_acquire
from quart_flet.session.registry import get_registry

ORIGINAL_SEND_ALL = PubSubHub.send_all


@dataclass
class Chat:
    """One session of tests/apps/chat.py, driven at the protocol level."""

    client: FletTestClient
    ids: dict[str, int]

    @classmethod
    async def join(cls, ws: Any) -> Chat:
        client = FletTestClient(ws)
        await client.register()
        patch = await client.receive_until(lambda m: m[0] == 2 and find_controls(m[1], _c="Button"))
        ids = {c["content"]: int(c["_i"]) for c in find_controls(patch, _c="Button")}
        ids["text"] = int(find_controls(patch, _c="TextField")[0]["_i"])
        return cls(client, ids)

    async def send(self, button: str, text: str) -> None:
        props = {"id": self.ids["text"], "props": {"value": text}}
        await self.client.ws.send(encode(UPDATE_CONTROL_PROPS, props))
        await self.client.click(self.ids[button])

    async def expect(self, line: str, timeout: float = 10) -> None:
        if not self.saw(line):
            await self.client.patch_with(line, timeout)

    def saw(self, line: str) -> bool:
        return any(contains(message, line) for message in self.client.messages)


async def button_sessions(
    test_app: Any, stack: contextlib.AsyncExitStack, count: int
) -> list[tuple[FletTestClient, int]]:
    """``count`` registered sessions, each with the id of its page's Button."""
    clients = []
    for _ in range(count):
        ws = await stack.enter_async_context(test_app.test_client().websocket("/ws"))
        client = FletTestClient(ws)
        await client.register()
        patch = await client.receive_until(lambda m: m[0] == 2 and find_controls(m[1], _c="Button"))
        clients.append((client, int(find_controls(patch, _c="Button")[0]["_i"])))
    return clients


async def exercise_chat(a: Chat, b: Chat, tag: str = "") -> None:
    """send_all, send_others and topics between two chat sessions, wherever
    they live. Negative checks rely on per-session delivery order."""
    await a.send("all", f"hello{tag}")
    await a.expect(f"all:hello{tag}")
    await b.expect(f"all:hello{tag}")

    await a.send("others", f"x{tag}")
    await b.expect(f"all:x{tag}")  # sent, and delivered wherever it was going
    await a.send("all", f"y{tag}")
    await a.expect(f"all:y{tag}")
    assert not a.saw(f"all:x{tag}"), "send_others reached its sender"

    # one text for both: the handlers read the field when they run, maybe after both edits
    await a.send("lobby", f"t{tag}")
    await a.send("room", f"t{tag}")
    await b.expect(f"room:t{tag}")
    await a.expect(f"room:t{tag}")
    assert not b.saw(f"lobby:t{tag}"), "a topic nobody subscribed to was delivered"


def make_app(main: Any, **opts: Any) -> Quart:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main, **opts))
    return app


@contextlib.asynccontextmanager
async def chats(app: Quart, count: int) -> AsyncIterator[list[Chat]]:
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        test = test_app.test_client()
        yield [
            await Chat.join(await stack.enter_async_context(test.websocket("/ws")))
            for _ in range(count)
        ]


async def test_chat_send_all_send_others_and_topics_in_memory() -> None:
    async with chats(make_app(chat_main), 2) as (a, b):
        await exercise_chat(a, b)


PROBES: list[tuple[str, str, str, str]] = []


async def probe_main(page: ft.Page) -> None:
    """Records where each pubsub handler ran and which page the context had.
    (async: see tests/apps/chat.py for why a test's main must not be sync)"""
    done = ft.Text("")

    def on_message(message: str) -> None:
        PROBES.append(
            ("sync", threading.current_thread().name, page.session.id, ft.context.page.session.id)
        )
        done.value = f"sync:{message}"
        page.update()

    async def on_topic(topic: str, message: str) -> None:
        assert asyncio.current_task() is not None
        PROBES.append(
            ("async", threading.current_thread().name, page.session.id, ft.context.page.session.id)
        )
        done.value = f"async:{message}"
        page.update()

    async def send(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all("m")
        page.pubsub.send_all_on_topic("t", "m")

    page.pubsub.subscribe(on_message)
    page.pubsub.subscribe_topic("t", on_topic)
    page.add(done, ft.Button("send", on_click=send))


async def test_sync_handlers_run_on_the_pool_async_on_the_loop_with_the_subscribers_page() -> None:
    PROBES.clear()
    async with make_app(probe_main).test_app() as test_app, contextlib.AsyncExitStack() as stack:
        test = test_app.test_client()
        clients = []
        for _ in range(2):
            client = FletTestClient(await stack.enter_async_context(test.websocket("/ws")))
            await client.register()
            patch = await client.receive_until(lambda m: m[0] == 2 and "Button" in str(m))
            clients.append((client, find_controls(patch, _c="Button")[0]["_i"]))
        await clients[0][0].click(clients[0][1])
        for client, _ in clients:
            await client.patch_with("sync:m")
            await client.patch_with("async:m")
    assert len(PROBES) == 4, PROBES
    loop_thread = threading.main_thread().name
    for kind, thread, subscriber, context_page in PROBES:
        assert subscriber == context_page, "ft.context.page is not the subscriber's page"
        if kind == "sync":
            assert thread.startswith("quart_flet"), thread
        else:
            assert thread == loop_thread, thread
    assert {p[2] for p in PROBES} == {c.session_id for c, _ in clients}


MOUNTED_IN: list[str] = []


@ft.control
class MountProbe(ft.Text):
    """A Text that records the thread its did_mount ran in."""

    def did_mount(self) -> None:
        MOUNTED_IN.append(threading.current_thread().name)


async def appending_main(page: ft.Page) -> None:
    """Flet's chat pattern: a sync pubsub handler appends a control and updates."""
    lines = ft.Column()

    def on_message(message: str) -> None:
        lines.controls.append(MountProbe(f"line:{message}"))
        lines.update()

    async def send(e: ft.Event[ft.Button]) -> None:
        page.pubsub.send_all("m")

    page.pubsub.subscribe(on_message)
    page.add(lines, ft.Button("send", on_click=send))


async def test_a_sync_handler_in_a_batch_diffs_its_update_in_its_own_thread() -> None:
    """As on flet's server, where a sync pubsub handler runs in a thread and its
    update diffs there: no trip to the loop and back for each delivery (issue
    26: that trip was the tail of a fan-out). The control it adds mounts in
    that thread, and every session gets its line."""
    MOUNTED_IN.clear()
    async with make_app(appending_main).test_app() as test_app:
        async with contextlib.AsyncExitStack() as stack:
            sessions = await button_sessions(test_app, stack, 3)
            await sessions[0][0].click(sessions[0][1])
            for client, _ in sessions:
                await client.patch_with("line:m")
    assert len(MOUNTED_IN) == 3
    assert all(name.startswith("quart_flet") for name in MOUNTED_IN), MOUNTED_IN


@pytest.fixture(name="pool")
def _pool() -> Any:
    pool = ThreadPoolExecutor(4, thread_name_prefix="quart_flet")
    yield pool
    pool.shutdown(wait=True)


async def test_one_session_gets_its_messages_in_send_order_from_a_sync_handler(pool: Any) -> None:
    hub = FletPubSub("order", asyncio.get_running_loop(), pool)
    received: list[int] = []
    all_in = asyncio.Event()
    loop = asyncio.get_running_loop()

    def handler(message: int) -> None:  # on the pool, where flet would race
        received.append(message)
        if len(received) == 300:
            loop.call_soon_threadsafe(all_in.set)

    hub.subscribe("s", handler)
    await asyncio.to_thread(lambda: [hub.send_all(n) for n in range(300)])
    await asyncio.wait_for(all_in.wait(), 10)
    assert received == list(range(300))


async def test_a_send_to_many_async_handlers_lets_the_loop_run_between_slices(pool: Any) -> None:
    """The handlers of one send run a slice per step of the loop: what was
    scheduled right after the send (a relay's write, a frame) runs after the
    first slice, not after every handler."""
    loop = asyncio.get_running_loop()
    hub = FletPubSub("slices", loop, pool)
    sessions = 20 * FIRST_SLICE
    ran: list[str] = []
    all_ran = asyncio.Event()

    async def handler(message: str) -> None:  # finishes without waiting
        ran.append(message)
        if len(ran) == sessions:
            all_ran.set()

    for n in range(sessions):
        hub.subscribe(f"s{n}", handler)
    seen_after_send: list[int] = []
    hub.send_all("m")
    loop.call_soon(lambda: seen_after_send.append(len(ran)))
    await asyncio.wait_for(all_ran.wait(), 10)
    assert seen_after_send == [FIRST_SLICE]
    assert ran == ["m"] * sessions


async def test_a_loop_busy_with_other_work_still_finishes_a_send_in_a_few_dozen_steps(
    pool: Any,
) -> None:
    """Slices are sized by how long a step takes, but a loop whose every step
    is long already (other users' work) still starts 1/MAX_STEPS of the send
    a step, instead of a handful of sessions."""
    loop = asyncio.get_running_loop()
    hub = FletPubSub("busy", loop, pool)
    sessions, ran, steps = 2000, [0], [0]
    all_ran = asyncio.Event()

    async def handler(message: str) -> None:
        ran[0] += 1
        if ran[0] == sessions:
            all_ran.set()

    def other_work() -> None:  # holds every step of the loop for 6 ms
        steps[0] += 1
        time.sleep(0.006)
        if not all_ran.is_set():
            loop.call_soon(other_work)

    for n in range(sessions):
        hub.subscribe(f"s{n}", handler)
    loop.call_soon(other_work)
    hub.send_all("m")
    await asyncio.wait_for(all_ran.wait(), 30)
    assert steps[0] <= 2 * MAX_STEPS  # about MAX_STEPS; 8 a step would take 250


SLICED_AT_STOP = """
import asyncio
from concurrent.futures import ThreadPoolExecutor
from quart_flet.runtime.pubsub import FletPubSub

SESSIONS = 2000
async def main():
    global hub
    hub = FletPubSub("stop", asyncio.get_running_loop(), ThreadPoolExecutor(2))
    async def handler(message):
        await asyncio.sleep(30)
    for n in range(SESSIONS):
        hub.subscribe(f"s{n}", handler)
    hub.send_all("m")
    await asyncio.sleep(0)  # the loop stops with most of the send still to start
asyncio.run(main())
print("stopped")
"""


def test_a_loop_stopping_while_a_send_is_being_sliced_leaves_nothing_pending() -> None:
    """The slices are a task: stopping the loop cancels it with the rest,
    instead of a callback that goes on making drain tasks after the stop
    (destroyed while pending, their handlers started after the others were
    cancelled)."""
    result = subprocess.run(
        [sys.executable, "-c", SLICED_AT_STOP], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["stopped"]
    assert "pending" not in result.stderr and "never awaited" not in result.stderr, result.stderr


async def test_a_relay_that_raises_still_leaves_this_processs_sessions_their_message(
    pool: Any,
) -> None:
    """PubSubRelay is public: a relay of the app's own may raise. The send
    raises it, as before, and the local sessions still get the message."""

    class BrokenRelay:
        def publish(self, hub: str, except_session_id: Any, topic: Any, message: Any) -> Any:
            raise ConnectionError("relay down")

    hub = FletPubSub("broken", asyncio.get_running_loop(), pool, BrokenRelay())
    got: list[str] = []
    arrived = asyncio.Event()

    async def handler(message: str) -> None:
        got.append(message)
        arrived.set()

    hub.subscribe("s", handler)
    with pytest.raises(ConnectionError):
        hub.send_all("hi")
    await asyncio.wait_for(arrived.wait(), 10)
    assert got == ["hi"]


async def test_an_unsubscribed_handler_gets_nothing_more(pool: Any) -> None:
    hub = FletPubSub("unsub", asyncio.get_running_loop(), pool)
    got: list[tuple[str, Any]] = []
    second = asyncio.Event()

    def first(message: Any) -> None:
        got.append(("first", message))

    async def later(topic: str, message: Any) -> None:
        got.append(("later", message))
        second.set()

    hub.subscribe("s", first)
    hub.send_all("before")  # queued: its delivery must still be skipped
    hub.unsubscribe_all("s")
    hub.send_all("after")
    hub.subscribe_topic("s", "t", later)
    hub.send_others_on_topic("other", "t", "now")  # the same session's queue: after the above
    await asyncio.wait_for(second.wait(), 10)
    assert got == [("later", "now")]


async def test_a_raising_handler_is_logged_and_delivery_goes_on(
    pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = FletPubSub("errors", asyncio.get_running_loop(), pool)
    survived = asyncio.Event()
    loop = asyncio.get_running_loop()

    def handler(message: str) -> None:
        if message == "bad":
            raise ValueError("handler exploded")
        loop.call_soon_threadsafe(survived.set)

    hub.subscribe("s", handler)
    hub.send_all("bad")
    hub.send_all("good")
    await asyncio.wait_for(survived.wait(), 10)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "pubsub handler of session s" in errors[0].getMessage()
    assert "handler exploded" in caplog.text


async def test_a_plain_flet_pubsubhub_in_the_same_process_is_unaffected() -> None:
    plain_got: list[Any] = []
    async with chats(make_app(chat_main), 1) as (chat,):
        plain = PubSubHub(loop=asyncio.get_running_loop())  # no executor: flet calls inline
        plain.subscribe(chat.client.session_id, plain_got.append)
        plain.send_all("plain")
        assert plain_got == ["plain"]  # flet's own behaviour, untouched
        await chat.send("all", "ours")
        await chat.expect("all:ours")
        assert not chat.saw("all:plain")
        assert plain_got == ["plain"]
    assert PubSubHub.send_all is ORIGINAL_SEND_ALL


BURST = 40  # messages per sender
RECEIVED: dict[str, list[tuple[str, int]]] = {}


def burst_main(page: ft.Page) -> None:
    """Each session records what it receives (a sync handler: the pool), and
    a click sends BURST messages with send_all from a sync handler."""
    me = page.session.id
    RECEIVED[me] = []

    def on_message(message: tuple[str, int]) -> None:
        RECEIVED[me].append(message)
        if len(RECEIVED[me]) % BURST == 0:
            counter.value = str(len(RECEIVED[me]))
            counter.update()

    page.pubsub.subscribe(on_message)

    def burst(e: ft.Event[ft.Button]) -> None:
        for number in range(BURST):
            page.pubsub.send_all((me, number))

    counter = ft.Text("0", key="count")
    page.add(ft.Button("burst", on_click=burst), counter)


async def test_a_burst_of_send_all_from_several_sessions_arrives_whole_and_in_order() -> None:
    """Every subscriber gets every sender's messages, each sender's in the
    order it sent them, while several senders burst at once."""
    RECEIVED.clear()
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(burst_main))
    senders = 4
    async with app.test_app() as test_app, contextlib.AsyncExitStack() as stack:
        clients = await button_sessions(test_app, stack, senders)
        for client, button in clients:  # all at once
            await client.click(button)
        total = str(senders * BURST)
        await asyncio.gather(*(client.patch_with(total, timeout=30) for client, _ in clients))
    assert len(RECEIVED) == senders
    for received in RECEIVED.values():
        assert len(received) == senders * BURST
        for sender in RECEIVED:
            numbers = [number for who, number in received if who == sender]
            assert numbers == list(range(BURST)), (sender, numbers)


async def test_a_blocking_sync_handler_does_not_hold_up_the_other_sessions_of_its_send(
    pool: Any,
) -> None:
    """One send's sync deliveries share a pool job; the session first in line
    blocks in its handler, and the others still get the message meanwhile
    (another job takes over the rest of the batch)."""
    hub = FletPubSub("blocking", asyncio.get_running_loop(), pool)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    others_in = asyncio.Event()
    got: list[str] = []
    others = 20

    def blocking(message: str) -> None:
        release.wait(10)  # bounded; the test sets it once the others are in
        got.append("slow")

    def quick(message: str) -> None:
        got.append(message)
        if got.count(message) == others:
            loop.call_soon_threadsafe(others_in.set)

    hub.subscribe("slow", blocking)  # first: the batch starts with it
    for n in range(others):
        hub.subscribe(f"s{n}", quick)
    hub.send_all("m")
    try:
        await asyncio.wait_for(others_in.wait(), 5)
        assert "slow" not in got, "the blocked handler had returned already"
    finally:
        release.set()


async def test_a_sessions_lock_is_taken_for_a_batch_only_when_free() -> None:
    lock = asyncio.Lock()
    assert _try_acquire(lock) and lock.locked()
    assert not _try_acquire(lock)  # held: the session goes through its drain task
    waiter = lock.acquire()  # driven by hand: queued behind the holder, no task
    waiter.send(None)
    lock.release()  # the waiter is woken, but has not run yet
    assert not lock.locked()
    assert not _try_acquire(lock), "jumped the queue of the lock"
    with pytest.raises(StopIteration):
        waiter.send(None)  # the waiter runs and takes the lock
    assert lock.locked()
    lock.release()
    assert _try_acquire(lock)


async def test_a_raising_handler_in_a_batch_does_not_cost_the_other_sessions_their_message(
    pool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = FletPubSub("batch-errors", asyncio.get_running_loop(), pool)
    loop = asyncio.get_running_loop()
    got: list[str] = []
    all_in, again = asyncio.Event(), asyncio.Event()

    def handler_of(name: str) -> Any:
        def handler(message: str) -> None:
            if name == "s1":
                raise ValueError(f"{name} exploded")
            got.append(name)
            if len(got) == 4:
                loop.call_soon_threadsafe(all_in.set)
            if message == "again" and name == "s0":
                loop.call_soon_threadsafe(again.set)

        return handler

    for n in range(5):  # one send: one batch of five sessions, the second raises
        hub.subscribe(f"s{n}", handler_of(f"s{n}"))
    hub.send_all("m")
    await asyncio.wait_for(all_in.wait(), 10)
    assert sorted(got) == ["s0", "s2", "s3", "s4"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "session s1" in errors[0].getMessage()
    assert "s1 exploded" in caplog.text
    hub.send_all("again")  # s1 is idle again: its next message reaches it
    await asyncio.wait_for(again.wait(), 10)  # s0 is not left busy by the batch


async def test_a_handler_unsubscribing_a_later_session_of_its_batch_stops_its_delivery(
    pool: Any,
) -> None:
    hub = FletPubSub("batch-unsub", asyncio.get_running_loop(), pool)
    loop = asyncio.get_running_loop()
    got: list[tuple[str, str]] = []
    done = asyncio.Event()

    def first(message: str) -> None:
        got.append(("first", message))
        if message == "m":
            hub.unsubscribe_all("second")  # from the pool, mid-batch

    def second(message: str) -> None:
        got.append(("second", message))

    def last(message: str) -> None:
        got.append(("last", message))
        if message == "end":
            loop.call_soon_threadsafe(done.set)

    hub.subscribe("first", first)
    hub.subscribe("second", second)
    hub.subscribe("last", last)
    hub.send_all("m")
    hub.send_all("end")
    await asyncio.wait_for(done.wait(), 10)
    assert ("second", "m") not in got and ("second", "end") not in got, got
    assert [m for who, m in got if who == "first"] == ["m", "end"]
    assert [m for who, m in got if who == "last"] == ["m", "end"]


async def test_a_send_all_from_inside_a_batch_reaches_every_session_after_the_first(
    pool: Any,
) -> None:
    hub = FletPubSub("batch-reentrant", asyncio.get_running_loop(), pool)
    loop = asyncio.get_running_loop()
    got: dict[str, list[str]] = {f"s{n}": [] for n in range(6)}
    done = asyncio.Event()

    def handler_of(name: str) -> Any:
        def handler(message: str) -> None:
            got[name].append(message)
            if name == "s0" and message == "first":
                hub.send_all("echo")  # from the pool thread, inside the batch
            if all(len(seen) == 2 for seen in got.values()):
                loop.call_soon_threadsafe(done.set)

        return handler

    for name in got:
        hub.subscribe(name, handler_of(name))
    hub.send_all("first")
    await asyncio.wait_for(done.wait(), 10)
    assert all(seen == ["first", "echo"] for seen in got.values()), got


async def test_a_session_blocked_in_a_batch_gets_its_later_messages_in_order(
    pool: Any,
) -> None:
    """Two send_alls in flight: the blocked session's second message waits for
    its first handler; the other sessions get both, in order, meanwhile."""
    hub = FletPubSub("batch-order", asyncio.get_running_loop(), pool)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    got: dict[str, list[int]] = {"slow": [], "a": [], "b": []}
    others_in, slow_in = asyncio.Event(), asyncio.Event()

    def handler_of(name: str) -> Any:
        def handler(message: int) -> None:
            if name == "slow" and message == 1:
                release.wait(10)
            got[name].append(message)
            if name != "slow" and len(got["a"]) == len(got["b"]) == 3:
                loop.call_soon_threadsafe(others_in.set)
            if name == "slow" and len(got["slow"]) == 3:
                loop.call_soon_threadsafe(slow_in.set)

        return handler

    for name in got:
        hub.subscribe(name, handler_of(name))
    for n in (1, 2, 3):
        hub.send_all(n)
    try:
        await asyncio.wait_for(others_in.wait(), 5)
        assert got["slow"] == [], "the blocked handler had returned already"
    finally:
        release.set()
    await asyncio.wait_for(slow_in.wait(), 10)
    assert got == {"slow": [1, 2, 3], "a": [1, 2, 3], "b": [1, 2, 3]}


async def test_pubsub_hub_of_a_page_sends_with_a_publication_done_at_once_without_redis() -> None:
    app = make_app(chat_main)
    async with chats(app, 2) as (a, b):
        (entry,) = [
            e for e in get_registry(app).sessions.values() if e.session.id == a.client.session_id
        ]
        page = entry.session.page
        hub = pubsub_hub(page)
        assert hub is get_registry(app).hub("flet")
        sent = hub.send_others(entry.session.id, "to-b")
        assert sent.done() and sent.result() is None  # no relay: nothing more to wait for
        await b.expect("all:to-b")
        await entry.session.disconnect(60)  # as the registry does when the browser leaves
        with pytest.raises(FletPageDisconnectedException):
            pubsub_hub(page)
