"""The Flet counter, served by Quart on Hypercorn.

Run: hypercorn examples.counter:app --bind 127.0.0.1:8000
"""

import flet as ft

from quart_flet import flet_app


async def main(page: ft.Page) -> None:
    page.title = "Flet counter"
    counter = ft.Text("0", size=40, key="counter")

    async def increment(e: ft.Event[ft.FloatingActionButton]) -> None:
        counter.value = str(int(counter.value or "0") + 1)
        counter.update()

    page.floating_action_button = ft.FloatingActionButton(
        icon=ft.Icons.ADD, on_click=increment, tooltip="Increment"
    )
    page.add(ft.Text("Counter:"), counter)


app = flet_app(main)

if __name__ == "__main__":
    # an ASGI app, not a script: say how to serve it instead of exiting silently
    raise SystemExit(
        "examples/counter.py is a Quart app for an ASGI server; serve it with:\n"
        "  .venv/bin/python -m hypercorn examples.counter:app --bind 127.0.0.1:8000 --workers 0\n"
        "then open http://127.0.0.1:8000/"
    )
