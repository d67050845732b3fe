"""A form whose draft survives a restart of the server: the draft lives in
``page.session.store`` while the session runs, ``on_session_save`` returns
it when the server stops, and the browser's next session (on the restarted
server) finds it in its store before ``main`` runs. The page shows its route
(``route:/form``) and the draft.

Run: hypercorn --workers 0 tests.apps.saved:app, type, restart it.
"""

from __future__ import annotations

from typing import Any

import flet as ft

from quart_flet import quart_app


async def main(page: ft.Page) -> None:
    typed = ft.Text("", key="typed")

    def keep(e: ft.Event[ft.TextField]) -> None:
        page.session.store.set("draft", e.control.value)
        typed.value = f"typed:{e.control.value}"

    saved = page.session.store.get("draft") or ""
    page.add(
        ft.Text(f"route:{page.route}", key="route"),
        ft.Text(f"started with:{saved}", key="started"),
        typed,
        ft.TextField(label="draft", key="draft", value=saved, on_change=keep),
    )


def save(page: ft.Page) -> dict[str, Any]:
    return {"draft": page.session.store.get("draft")}


app = quart_app(main, on_session_save=save)
