"""Redis as the shared backend: pubsub and OAuth sign-ins across processes
and hosts.

Every send of a Flet app's ``page.pubsub`` is delivered to this process's
sessions at once and appended to the Redis stream ``quart-flet:pubsub:<app>``
(XADD, trimmed to about ``stream_length`` entries); every process reads the
streams of its apps from a cursor (XREAD BLOCK) and delivers what other
processes sent to its own sessions. ``send_others`` carries the sender's
session id, so only that session is left out; topics filter on arrival.

Why streams and not PUBLISH/SUBSCRIBE: a published message reaches only the
subscribers connected at that instant, and nobody learns who was not. After a
Redis restart each process resubscribes after its own retry delay, and what
the others published in between reached none of its sessions, silently. A
stream keeps the messages; a process that reconnects goes on from the last
entry it read, so it catches up instead of losing them, and reads each entry
once.

Faults: when Redis is unreachable the server keeps serving and local delivery
goes on. Each message that could not be appended is logged with
``logger.error``, counted as failed, and the :class:`~concurrent.futures.Future`
its send returned fails with :class:`~quart_flet.runtime.pubsub.PubSubNotPublished`.
The reader reconnects with a short capped backoff (0.05 s doubling to
``max_backoff``) and catches up, logging a warning when it is back. Every
appended message carries its process's id and a sequence number: a reader
drops one it has seen already (a retried XADD) and logs the messages of a
process it never received (trimmed before it read them, or lost with a Redis
that restarted without persistence). Nothing here raises into a request or a
session.

OAuth: pending states live in Redis (:class:`RedisOAuthStateStore`), so the
callback finds them on any worker; a worker whose callback belongs to a session
it does not hold appends the result to ``quart-flet:oauth:<app>`` and the
worker holding that session completes the sign-in (:meth:`RedisBackend.complete_oauth`).

Pubsub messages are pickled, so ``page.pubsub`` carries the same Python objects it
does in memory (dataclasses included). Unpickling runs code, so every message
(and every OAuth hand-over) is signed with HMAC-SHA256 under a key derived
from the Flet app's secret key (the secret_key option, FLET_SECRET_KEY or the
Quart app's SECRET_KEY; SECRET_KEY_FALLBACKS verify too, so keys can rotate),
and only a message whose signature checks out is unpickled. Whoever can write
to the Redis but does not have the key can disrupt delivery, not run code.
Every process of one app must have the same key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from quart_flet.backends.base import OAuthHandler, safe_url
from quart_flet.runtime.pubsub import FletPubSub, Publication, PubSubNotPublished, settle
from quart_flet.runtime.threads import call_on_loop
from quart_flet.stats import STATS

logger = logging.getLogger("quart_flet")

__all__ = ["RedisBackend", "RedisOAuthStateStore", "stream_for"]

STREAM_PREFIX = "quart-flet:pubsub:"
OAUTH_STREAM_PREFIX = "quart-flet:oauth:"
OAUTH_KEY_PREFIX = "quart-flet:oauth-state:"
SAVED_KEY_PREFIX = "quart-flet:saved-state:"
#: OAuth hand-overs kept in their stream (a sign-in is read within a second)
OAUTH_STREAM_LENGTH = 1000
#: how long one XREAD waits for entries before it is sent again
READ_BLOCK_MS = 5000
#: entries one XREAD returns at most
READ_COUNT = 1000
#: processes whose last sequence number a reader remembers
MAX_ORIGINS = 1024

# (except_session_id, topic, message)
_Envelope = tuple[str | None, str | None, Any]
# (stream, envelope, its signed pickle, the sender's future)
_Outgoing = tuple[str, _Envelope, bytes, Publication]
# what XREAD answers (RESP2): [(stream, [(entry id, fields), ...]), ...]
_Replies = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


def stream_for(hub: str) -> str:
    return STREAM_PREFIX + hub


class Signer:
    """HMAC-SHA256 over what one Flet app puts on Redis: the MAC, then the data."""

    SIZE = hashlib.sha256().digest_size

    def __init__(self, hub: str, keys: list[str]) -> None:
        # a key per app and purpose, derived: the raw secret key never signs here
        self.keys = [
            hmac.new(key.encode(), f"quart-flet.redis.{hub}".encode(), hashlib.sha256).digest()
            for key in keys
        ]

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self.keys[-1], data, hashlib.sha256).digest() + data

    def verify(self, signed: bytes) -> bytes | None:
        """The data if any key (current or fallback) signed it, else None."""
        mac, data = signed[: self.SIZE], signed[self.SIZE :]
        for key in reversed(self.keys):
            if hmac.compare_digest(hmac.new(key, data, hashlib.sha256).digest(), mac):
                return data
        return None


class RedisBackend:
    """One Redis connection pool and one reader connection per Quart app.

    ``keys`` maps the names of the Flet apps whose pubsub and OAuth go
    through Redis to their secret keys (``[*fallbacks, current]``);
    ``on_oauth`` takes the OAuth results other processes send this one.
    ``stream_length`` is about how many messages an app's stream keeps: a
    process that was cut off from Redis catches up on at most that many.
    """

    def __init__(
        self,
        url: str,
        keys: Mapping[str, list[str]],
        on_oauth: OAuthHandler,
        *,
        max_backoff: float = 0.5,
        max_queued: int = 10_000,
        stream_length: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.hub_names = frozenset(keys)
        self.signers = {hub: Signer(hub, hub_keys) for hub, hub_keys in keys.items()}
        self.on_oauth = on_oauth
        self.max_backoff = max_backoff
        self.max_queued = max_queued
        self.stream_length = stream_length
        # Lets a process skip the messages it appended itself: it delivered
        # them locally already.
        self.origin = os.urandom(8)
        self.hubs: dict[str, FletPubSub] = {}
        # One immediate retry, on a fresh connection: a pooled connection from
        # before a Redis restart fails once. Any longer and a publish during an
        # outage would stall every send queued behind it instead of failing.
        # (A retried XADD that had gone through is dropped by its readers.)
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # Reconnecting the reader is our loop's job, with its own backoff; a
        # blocked XREAD answers within READ_BLOCK_MS, so a silent peer shows.
        self.reader_client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout + READ_BLOCK_MS / 1000,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.oauth_states = RedisOAuthStateStore(self.client)
        self.saved_states = RedisOAuthStateStore(
            self.client, SAVED_KEY_PREFIX, "saved session state"
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[_Outgoing] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._first_attempt = asyncio.Event()  # connected, or failed to
        # the last entry read from each stream; None until Redis first answers
        self._cursors: dict[str, str] | None = None
        self._sequences: dict[str, int] = {}  # per stream, of this process's appends
        self._last_seen: OrderedDict[tuple[str, bytes], int] = OrderedDict()

    @property
    def connected(self) -> bool:
        """Reading from Redis right now: messages cross processes."""
        return self._connected.is_set()

    @property
    def streams(self) -> list[str]:
        return sorted(stream_for(name) for name in self.hub_names) + sorted(
            OAUTH_STREAM_PREFIX + name for name in self.hub_names
        )

    # ---- lifecycle -----------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._publish_forever()),
            asyncio.create_task(self._read_forever()),
        ]
        # Serve only once the streams' ends are known, so no message sent to a
        # new session is missed; but an unreachable Redis must not keep the app
        # from serving.
        try:
            await asyncio.wait_for(self._first_attempt.wait(), 5)
        except TimeoutError:
            pass
        if not self._connected.is_set():
            logger.error(
                "Redis %s is not reachable: serving anyway; pubsub stays local until it is back",
                safe_url(self.url),
            )

    async def stop(self) -> None:
        outbox = self._outbox
        if outbox is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(outbox.join(), 2)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if outbox is not None and not outbox.empty():
            left = [outbox.get_nowait() for _ in range(outbox.qsize())]
            self._lost(left, "the server stopped before Redis was reachable")
        self.hubs.clear()
        await self.client.aclose()
        await self.reader_client.aclose()

    def attach(self, hub: FletPubSub) -> None:
        if hub.name in self.hub_names:
            self.hubs[hub.name] = hub
            hub.relay = self

    # ---- publishing ----------------------------------------------------

    def publish(
        self, hub: str, except_session_id: str | None, topic: str | None, message: Any
    ) -> Publication:
        stream, envelope = stream_for(hub), (except_session_id, topic, message)
        sent: Publication = Future()
        try:
            # now, in the sender's thread: what was sent, not what it became later
            frame = pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL)
            item = (stream, envelope, self.signers[hub].sign(frame), sent)
        except Exception as error:
            self._lost([(stream, envelope, b"", sent)], f"cannot pickle it: {error}")
            return sent
        loop = self.loop
        if loop is None:
            self._lost([item], "the Redis backend is not running")
            return sent
        call_on_loop(loop, self._queue, item)
        return sent

    def _queue(self, item: _Outgoing) -> None:
        assert self._outbox is not None
        if self._outbox.qsize() >= self.max_queued:
            self._lost([item], f"more than {self.max_queued} messages wait for Redis")
            return
        self._outbox.put_nowait(item)

    async def _publish_forever(self) -> None:
        """One publisher keeps the order of sends; what piled up goes in one
        pipeline round trip. Each entry carries this process's id and its
        number in this process's sends to that stream."""
        assert self._outbox is not None
        outbox = self._outbox
        while True:
            batch = [await outbox.get()]
            while not outbox.empty() and len(batch) < 500:
                batch.append(outbox.get_nowait())
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for stream, _, frame, _ in batch:
                        number = self._sequences[stream] = self._sequences.get(stream, 0) + 1
                        fields = {"o": self.origin, "n": number, "m": frame}
                        pipe.xadd(stream, fields, maxlen=self.stream_length, approximate=True)  # type: ignore[arg-type]
                    results = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                self._lost(batch, "the server stopped while appending it: it may have been")
                raise
            except (RedisError, OSError) as error:
                self._lost(batch, f"Redis error: {error}")
            except Exception as error:
                self._lost(batch, f"{type(error).__name__}: {error}")
            else:
                for item, result in zip(batch, results, strict=True):
                    if isinstance(result, Exception):
                        self._lost([item], f"Redis error: {result}")
                    else:
                        settle(item[3], None)
            finally:
                for _ in batch:
                    outbox.task_done()

    @staticmethod
    def _lost(batch: list[_Outgoing], why: str) -> None:
        STATS.pubsub_failed += len(batch)
        for stream, (except_session_id, topic, message), _, sent in batch:
            logger.error(
                "pubsub message NOT published to Redis stream %s (%s): sessions "
                "in other processes will not get it; topic=%r, except_session=%r, "
                "message=%.200r",
                stream,
                why,
                topic,
                except_session_id,
                message,
            )
            settle(sent, PubSubNotPublished(f"not published to Redis stream {stream} ({why})"))

    # ---- reading -------------------------------------------------------

    async def _read_forever(self) -> None:
        backoff, failures = 0.05, 0
        while True:
            try:
                if self._cursors is None:
                    self._cursors = await self._stream_ends()
                else:
                    await self.reader_client.ping()
                self._on_connected(failures)
                backoff, failures = 0.05, 0
                while True:
                    replies = cast(
                        _Replies,
                        await self.reader_client.xread(
                            self._cursors,  # type: ignore[arg-type]
                            count=READ_COUNT,
                            block=READ_BLOCK_MS,
                        ),
                    )
                    for stream_bytes, entries in replies or ():
                        stream = stream_bytes.decode()
                        for entry_id, fields in entries:
                            self._cursors[stream] = entry_id.decode()
                            self._on_entry(stream, fields)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self._connected.clear()
                if self._cursors is None:
                    # Redis never answered: what is appended from now on is ours
                    # to read (stream ids are Redis's clock in ms; NTP keeps
                    # hosts within that)
                    self._cursors = dict.fromkeys(self.streams, f"{int(time.time() * 1000)}-0")
                self._first_attempt.set()
                log = logger.error if failures == 1 else logger.debug
                log(
                    "Redis pubsub connection to %s lost (%s): pubsub is local to this "
                    "process until it is back; retrying every %.2gs at most",
                    safe_url(self.url),
                    str(error) or type(error).__name__,
                    self.max_backoff,
                )
            await asyncio.sleep(backoff)  # retry backoff, not synchronisation
            backoff = min(backoff * 2, self.max_backoff)

    async def _stream_ends(self) -> dict[str, str]:
        """The id of each stream's last entry ("0-0" for a stream not made yet):
        a process starting now reads what is appended after it."""
        streams = self.streams
        async with self.reader_client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrevrange(stream, count=1)
            lasts = await pipe.execute()
        return {
            stream: last[0][0].decode() if last else "0-0"
            for stream, last in zip(streams, lasts, strict=True)
        }

    def _on_connected(self, failures: int) -> None:
        self._connected.set()
        self._first_attempt.set()
        if failures:
            logger.warning(
                "Redis pubsub reconnected to %s: reading %s on from the last entries read",
                safe_url(self.url),
                ", ".join(self.streams),
            )
        else:
            logger.info("Redis pubsub reading %s", ", ".join(self.streams))

    def _verified(self, hub: str, data: bytes, what: str) -> bytes | None:
        signer = self.signers.get(hub)
        frame = signer.verify(data) if signer is not None else None
        if frame is None:
            logger.error(
                "%s on Redis for Flet app %r dropped: its signature does not match this "
                "app's secret key (another deployment with another key, or not ours)",
                what,
                hub,
            )
        return frame

    def _on_entry(self, stream: str, fields: dict[bytes, bytes]) -> None:
        if stream.startswith(OAUTH_STREAM_PREFIX):
            self._on_oauth(stream[len(OAUTH_STREAM_PREFIX) :], fields.get(b"m", b""))
            return
        origin, number, data = fields.get(b"o"), fields.get(b"n", b""), fields.get(b"m", b"")
        if origin == self.origin:
            return  # ours: delivered already
        name = stream[len(STREAM_PREFIX) :]
        frame = self._verified(name, data, "pubsub message")
        if frame is None or origin is None or not self._next_of(stream, origin, number):
            return
        hub = self.hubs.get(name)
        try:
            except_session_id, topic, message = pickle.loads(frame)
        except Exception:
            logger.error("undecodable pubsub message on Redis stream %r", stream, exc_info=True)
            return
        if hub is not None:  # else no session of that app here yet
            hub.deliver(except_session_id, topic, message)

    def _next_of(self, stream: str, origin: bytes, number_field: bytes) -> bool:
        """Whether a message numbered ``number_field`` by process ``origin`` is
        new; logs the numbers of that process that never arrived."""
        try:
            number = int(number_field)
        except ValueError:
            logger.error("pubsub message on Redis stream %r without a number dropped", stream)
            return False
        key = (stream, origin)
        last = self._last_seen.get(key)
        if last is not None:
            if number <= last:
                logger.warning(
                    "pubsub message %d of process %s read again from Redis stream %s "
                    "(a retried append): dropped, its sessions had it",
                    number,
                    origin.hex(),
                    stream,
                )
                return False
            if number > last + 1:
                logger.error(
                    "%d pubsub message(s) of process %s on Redis stream %s never reached "
                    "this process, so its sessions missed them: that process logged them "
                    "as not published, or Redis dropped them (trimmed at stream_length "
                    "before they were read, or lost in a restart)",
                    number - last - 1,
                    origin.hex(),
                    stream,
                )
            self._last_seen.move_to_end(key)
        self._last_seen[key] = number
        if len(self._last_seen) > MAX_ORIGINS:
            self._last_seen.popitem(last=False)
        return True

    # ---- OAuth ---------------------------------------------------------

    async def complete_oauth(self, hub: str, session_id: str, record: str) -> None:
        """Hand a sign-in result (``oauth.OAuthState.dumps()``) to the process
        holding ``session_id`` of app ``hub``; raises if Redis is unreachable."""
        try:
            await self.client.xadd(
                OAUTH_STREAM_PREFIX + hub,
                {"m": self.signers[hub].sign(record.encode())},
                maxlen=OAUTH_STREAM_LENGTH,
                approximate=True,
            )
        except (RedisError, OSError) as error:
            logger.error(
                "OAuth sign-in of session %s NOT handed to its worker through Redis (%s)",
                session_id,
                error,
            )
            raise

    def _on_oauth(self, hub: str, data: bytes) -> None:
        frame = self._verified(hub, data, "OAuth completion")
        if frame is not None:
            self.on_oauth(hub, frame.decode())


class RedisOAuthStateStore:
    """Pending OAuth states in Redis: put with a ttl, take at most once (GETDEL),
    whichever worker asks. A Redis failure is logged and reads as no state.
    With another ``prefix`` and ``what``, the same for other values (the
    saved session states of quart_flet.session.saved)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = OAUTH_KEY_PREFIX,
        what: str = "OAuth state",
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.what = what

    async def put(self, key: str, value: str, ttl: float) -> None:
        try:
            await self.client.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as error:
            logger.error(
                "%s for %s NOT stored in Redis (%s): it is lost", self.what, _public(key), error
            )

    async def take(self, key: str) -> str | None:
        try:
            raw = await self.client.getdel(self.prefix + key)
        except (RedisError, OSError) as error:
            logger.error("%s for %s NOT read from Redis (%s)", self.what, _public(key), error)
            return None
        return raw.decode() if isinstance(raw, bytes) else raw


def _public(key: str) -> str:
    """A store key without its secret part (the state or token)."""
    return key.rsplit(":", 1)[0]
