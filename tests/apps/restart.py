"""A counter whose tree grows as it counts (a note after the third click and
a dialog), for restarting the server under an open page.

Run: hypercorn tests.apps.restart:app
"""

from __future__ import annotations

import flet as ft

from quart_flet import quart_app


async def main(page: ft.Page) -> None:
    counter = ft.Text("0", size=40)

    async def increment(e: ft.Event[ft.Button]) -> None:
        counter.value = str(int(counter.value or "0") + 1)
        if counter.value == "3":
            page.add(ft.Text("three clicks or more"))
            page.show_dialog(ft.AlertDialog(title=ft.Text("a dialog of the old session")))
        page.update()

    page.add(ft.Text("Counter:"), counter, ft.Button("Increment", on_click=increment))


app = quart_app(main)
