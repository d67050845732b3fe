"""Redis as the shared backend: pubsub and OAuth sign-ins across processes
and hosts.

Every send of a Flet app's ``page.pubsub`` is delivered to this process's
sessions at once and published to the Redis channel ``quart-flet:pubsub:<app>``;
every process subscribes to the channels of its apps and delivers what other
processes published to its own sessions. ``send_others`` carries the sender's
session id, so only that session is left out; topics filter on arrival.

Faults: when Redis is unreachable the server keeps serving and local delivery
goes on; each message that could not be published is logged with
``logger.error`` (other processes will not see it); the subscriber reconnects
with capped exponential backoff and resubscribes, logging a warning when it is
back. Nothing here raises into a request or a session.

OAuth: pending states live in Redis (:class:`RedisOAuthStateStore`), so the
callback finds them on any worker; a worker whose callback belongs to a session
it does not hold publishes the result on ``quart-flet:oauth:<app>`` and the
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
import hashlib
import hmac
import logging
import os
import pickle
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from quart_flet.backends.base import OAuthHandler, safe_url
from quart_flet.pubsub import FletPubSub
from quart_flet.stats import STATS

logger = logging.getLogger("quart_flet")

__all__ = ["RedisBackend", "RedisOAuthStateStore", "channel_for"]

CHANNEL_PREFIX = "quart-flet:pubsub:"
OAUTH_CHANNEL_PREFIX = "quart-flet:oauth:"
OAUTH_KEY_PREFIX = "quart-flet:oauth-state:"

# (origin, except_session_id, topic, message)
_Envelope = tuple[bytes, str | None, str | None, Any]
# (channel, envelope, its pickle)
_Outgoing = tuple[str, _Envelope, bytes]


def channel_for(hub: str) -> str:
    return CHANNEL_PREFIX + hub


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
    """One Redis connection pool and one subscriber connection per Quart app.

    ``keys`` maps the names of the Flet apps whose pubsub and OAuth go
    through Redis to their secret keys (``[*fallbacks, current]``);
    ``on_oauth`` takes the OAuth results other processes send this one.
    """

    def __init__(
        self,
        url: str,
        keys: Mapping[str, list[str]],
        on_oauth: OAuthHandler,
        *,
        max_backoff: float = 2.0,
        max_queued: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.hub_names = frozenset(keys)
        self.signers = {hub: Signer(hub, hub_keys) for hub, hub_keys in keys.items()}
        self.on_oauth = on_oauth
        self.max_backoff = max_backoff
        self.max_queued = max_queued
        # Lets a process skip the messages it published itself: it delivered
        # them locally already.
        self.origin = os.urandom(8)
        self.hubs: dict[str, FletPubSub] = {}
        # One immediate retry, on a fresh connection: a pooled connection from
        # before a Redis restart fails once. Any longer and a publish during an
        # outage would stall every send queued behind it instead of failing.
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # Reconnecting the subscriber is our loop's job, with its own backoff.
        self.subscriber_client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=15,
        )
        self.oauth_states = RedisOAuthStateStore(self.client)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[_Outgoing] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._first_attempt = asyncio.Event()  # subscribed, or failed to

    @property
    def connected(self) -> bool:
        """Subscribed to Redis right now: messages cross processes."""
        return self._subscribed.is_set()

    # ---- lifecycle -----------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._publish_forever()),
            asyncio.create_task(self._subscribe_forever()),
        ]
        # Serve only once subscribed, so no message sent to a new session is
        # missed; but an unreachable Redis must not keep the app from serving.
        try:
            await asyncio.wait_for(self._first_attempt.wait(), 5)
        except TimeoutError:
            pass
        if not self._subscribed.is_set():
            logger.error(
                "Redis %s is not reachable: serving anyway; pubsub stays local until it is back",
                safe_url(self.url),
            )

    async def stop(self) -> None:
        if self._outbox is not None:
            try:
                await asyncio.wait_for(self._outbox.join(), 2)
            except TimeoutError:
                logger.error(
                    "stopping with %d pubsub message(s) not published to Redis",
                    self._outbox.qsize(),
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.hubs.clear()
        await self.client.aclose()
        await self.subscriber_client.aclose()

    def attach(self, hub: FletPubSub) -> None:
        if hub.name in self.hub_names:
            self.hubs[hub.name] = hub
            hub.relay = self

    # ---- publishing ----------------------------------------------------

    def publish(
        self, hub: str, except_session_id: str | None, topic: str | None, message: Any
    ) -> None:
        channel, envelope = channel_for(hub), (self.origin, except_session_id, topic, message)
        try:
            # now, in the sender's thread: what was sent, not what it became later
            frame = pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL)
            item = (channel, envelope, self.signers[hub].sign(frame))
        except Exception as error:
            self._lost([(channel, envelope, b"")], f"cannot pickle it: {error}")
            return
        loop = self.loop
        if loop is None:
            self._lost([item], "the Redis backend is not running")
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._queue(item)
        else:
            loop.call_soon_threadsafe(self._queue, item)

    def _queue(self, item: _Outgoing) -> None:
        assert self._outbox is not None
        if self._outbox.qsize() >= self.max_queued:
            self._lost([item], f"more than {self.max_queued} messages wait for Redis")
            return
        self._outbox.put_nowait(item)

    async def _publish_forever(self) -> None:
        """One publisher keeps the order of sends; what piled up goes in one
        pipeline round trip."""
        assert self._outbox is not None
        outbox = self._outbox
        while True:
            batch = [await outbox.get()]
            while not outbox.empty() and len(batch) < 500:
                batch.append(outbox.get_nowait())
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for channel, _, frame in batch:
                        pipe.publish(channel, frame)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                self._lost(batch, f"Redis error: {error}")
            except Exception as error:
                self._lost(batch, f"{type(error).__name__}: {error}")
            finally:
                for _ in batch:
                    outbox.task_done()

    @staticmethod
    def _lost(batch: list[_Outgoing], why: str) -> None:
        STATS.pubsub_failed += len(batch)
        for channel, (_, except_session_id, topic, message), _ in batch:
            logger.error(
                "pubsub message NOT published to Redis channel %s (%s): sessions "
                "in other processes will not get it; topic=%r, except_session=%r, "
                "message=%.200r",
                channel,
                why,
                topic,
                except_session_id,
                message,
            )

    # ---- subscribing ---------------------------------------------------

    async def _subscribe_forever(self) -> None:
        channels = sorted(channel_for(name) for name in self.hub_names)
        channels += sorted(OAUTH_CHANNEL_PREFIX + name for name in self.hub_names)
        backoff, failures = 0.05, 0
        while True:
            pubsub = self.subscriber_client.pubsub()
            try:
                await pubsub.subscribe(*channels)
                confirmed: set[str] = set()
                while True:
                    # wakes up when idle, so the health check (a PING) can run
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        confirmed.add(message["channel"].decode())
                        if confirmed == set(channels):
                            self._on_subscribed(channels, failures)
                            backoff, failures = 0.05, 0
                    elif message["type"] == "message":
                        self._on_message(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                self._subscribed.clear()
                self._first_attempt.set()
                log = logger.error if failures == 1 else logger.debug
                log(
                    "Redis pubsub connection to %s lost (%s): pubsub is local to this "
                    "process until it is back; retrying every %.2gs at most",
                    safe_url(self.url),
                    str(error) or type(error).__name__,
                    self.max_backoff,
                )
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in redis 8
                except Exception:
                    logger.debug("error closing a broken Redis pubsub connection", exc_info=True)
            await asyncio.sleep(backoff)  # retry backoff, not synchronisation
            backoff = min(backoff * 2, self.max_backoff)

    def _on_subscribed(self, channels: list[str], failures: int) -> None:
        self._subscribed.set()
        self._first_attempt.set()
        if failures:
            logger.warning(
                "Redis pubsub reconnected to %s and resubscribed to %s",
                safe_url(self.url),
                ", ".join(channels),
            )
        else:
            logger.info("Redis pubsub subscribed to %s", ", ".join(channels))

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

    def _on_message(self, channel_bytes: bytes, data: bytes) -> None:
        channel = channel_bytes.decode()
        if channel.startswith(OAUTH_CHANNEL_PREFIX):
            self._on_oauth(channel[len(OAUTH_CHANNEL_PREFIX) :], data)
            return
        name = channel[len(CHANNEL_PREFIX) :]
        hub = self.hubs.get(name)
        frame = self._verified(name, data, "pubsub message")
        if frame is None:
            return
        try:
            origin, except_session_id, topic, message = pickle.loads(frame)
        except Exception:
            logger.error("undecodable pubsub message on Redis channel %r", channel, exc_info=True)
            return
        if hub is None or origin == self.origin:
            return  # no session of that app here yet, or ours: delivered already
        hub.deliver(except_session_id, topic, message)

    # ---- OAuth ---------------------------------------------------------

    async def complete_oauth(self, hub: str, session_id: str, record: str) -> None:
        """Hand a sign-in result (``oauth.OAuthState.dumps()``) to the process
        holding ``session_id`` of app ``hub``; raises if Redis is unreachable."""
        try:
            await self.client.publish(
                OAUTH_CHANNEL_PREFIX + hub, self.signers[hub].sign(record.encode())
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
    whichever worker asks. A Redis failure is logged and reads as no state."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def put(self, key: str, value: str, ttl: float) -> None:
        try:
            await self.client.set(OAUTH_KEY_PREFIX + key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as error:
            logger.error(
                "OAuth state for %s NOT stored in Redis (%s): that sign-in will fail",
                _public(key),
                error,
            )

    async def take(self, key: str) -> str | None:
        try:
            raw = await self.client.getdel(OAUTH_KEY_PREFIX + key)
        except (RedisError, OSError) as error:
            logger.error("OAuth state for %s NOT read from Redis (%s)", _public(key), error)
            return None
        return raw.decode() if isinstance(raw, bytes) else raw


def _public(key: str) -> str:
    """A store key without its secret part (the state or token)."""
    return key.rsplit(":", 1)[0]
