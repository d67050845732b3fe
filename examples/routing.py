"""Routing with views, the Flet 1.0 way, with sync handlers throughout: a sync
``main``, a sync ``on_route_change``, and buttons that call ``page.navigate()``
from sync lambdas. quart-flet runs these on its thread pool, and hands
``page.navigate()`` to the event loop for them. Deep links work: open
/shop/store directly and the store view is there.

Run: hypercorn examples.routing:app --bind 127.0.0.1:8000
then open http://127.0.0.1:8000/shop/
"""

import flet as ft
from quart import Quart

from quart_flet import flet_blueprint


def main(page: ft.Page) -> None:
    page.title = "Routes example"

    def route_change() -> None:
        page.views.clear()
        page.views.append(
            ft.View(
                route="/",
                controls=[
                    ft.AppBar(title=ft.Text("Flet app")),
                    ft.Button("Visit Store", on_click=lambda: page.navigate("/store")),
                ],
            )
        )
        if page.route == "/store":
            page.views.append(
                ft.View(
                    route="/store",
                    controls=[
                        ft.AppBar(title=ft.Text("Store")),
                        ft.Button("Go Home", on_click=lambda: page.navigate("/")),
                    ],
                )
            )
        page.update()

    async def view_pop(e: ft.ViewPopEvent) -> None:
        if e.view is not None:
            page.views.remove(e.view)
            await page.push_route(page.views[-1].route)

    page.on_route_change = route_change
    page.on_view_pop = view_pop
    route_change()


app = Quart(__name__)
app.register_blueprint(flet_blueprint(main, name="shop"), url_prefix="/shop")
