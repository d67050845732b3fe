"""Views and routes driven the way flet's own routing examples do it: sync
lambdas that call ``asyncio.create_task(page.push_route(...))``, and a sync
``main`` that asks for the running loop."""

import asyncio

import flet as ft
from quart import Quart

from quart_flet import flet_blueprint


def main(page: ft.Page) -> None:
    loop = asyncio.get_running_loop()  # as flet's cookbook apps do

    def go(route: str) -> None:
        asyncio.create_task(page.push_route(route))

    def show_route() -> None:
        page.views.clear()
        page.views.append(
            ft.View(
                route="/",
                controls=[
                    ft.Text("Home view"),
                    ft.Button("To shelf", on_click=lambda: go("/shelf")),
                ],
            )
        )
        if page.route == "/shelf":
            page.views.append(
                ft.View(
                    route="/shelf",
                    controls=[
                        ft.Text(f"Shelf view on a {type(loop).__name__}"),
                        ft.Button("Back home", on_click=lambda: go("/")),
                    ],
                )
            )
        page.update()

    async def pop_view(e: ft.ViewPopEvent) -> None:
        page.views.pop()
        await page.push_route(page.views[-1].route)

    page.on_route_change = show_route
    page.on_view_pop = pop_view
    show_route()


app = Quart(__name__)
app.register_blueprint(flet_blueprint(main), url_prefix="/books")
