"""A Flet 1.0 components app (declarative, React-like) with sync code
throughout: ``main`` calls ``page.render()``, and the button's sync handler
calls a ``use_state`` setter. quart-flet runs both on its thread pool and
hands flet's component scheduler its work on the event loop.

Run: hypercorn examples.components:app --bind 127.0.0.1:8000
then open http://127.0.0.1:8000/
"""

import flet as ft

from quart_flet import quart_app


@ft.component
def Counter() -> ft.Control:
    count, set_count = ft.use_state(0)

    def add(e: ft.Event[ft.Button]) -> None:
        set_count(count + 1)

    return ft.Row(
        [ft.Text(f"Clicked {count} times"), ft.Button("Add one", on_click=add)],
        alignment=ft.MainAxisAlignment.CENTER,
    )


def main(page: ft.Page) -> None:
    page.title = "Components counter"
    page.render(Counter)


app = quart_app(main)
