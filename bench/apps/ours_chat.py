"""The fan-out chat on quart-flet: ``hypercorn -k uvloop bench.apps.ours_chat:sync_app``
(or ``:async_app``); with FLET_REDIS_URL set, pubsub crosses processes."""

from bench.apps.chat import async_main, sync_main
from quart_flet import flet_app

sync_app = flet_app(sync_main)
async_app = flet_app(async_main)
