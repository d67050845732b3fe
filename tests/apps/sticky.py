"""The counter example plus a ``pid:<pid>`` text, so a test behind a load
balancer can tell which Hypercorn process holds a session. It logs
"session <id> disconnected" when a client leaves, so a test knows when the
session is free to be resumed.

Run: FLET_STICKY_COOKIE=flet_client hypercorn --workers 0 tests.apps.sticky:app
"""

from __future__ import annotations

import logging
import os

import flet as ft

from examples.counter import main as counter_main
from quart_flet import quart_app

logger = logging.getLogger("quart_flet.tests.sticky")


async def main(page: ft.Page) -> None:
    await counter_main(page)
    page.add(ft.Text(f"pid:{os.getpid()}", key="pid"))

    def on_disconnect(e: ft.Event[ft.Page]) -> None:
        logger.info("session %s disconnected", page.session.id)

    page.on_disconnect = on_disconnect


app = quart_app(main)
