"""The Flet counter, served by Quart on Hypercorn.

Run: python examples/counter.py (http://127.0.0.1:8000/, or $FLET_SERVER_PORT),
quart-flet run --reload examples/counter.py while editing it, or in production
hypercorn examples.counter:app --bind 127.0.0.1:8000 --workers 0
"""

import flet as ft

from quart_flet import quart_app, run


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


app = quart_app(main)

if __name__ == "__main__":
    run(main)
