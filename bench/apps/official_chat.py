"""The fan-out chat, the official way: ``uvicorn bench.apps.official_chat:sync_app``
(or ``:async_app``)."""

import flet_web.fastapi as flet_fastapi

from bench.apps.chat import async_main, sync_main

sync_app = flet_fastapi.app(sync_main, no_cdn=True)
async_app = flet_fastapi.app(async_main, no_cdn=True)
