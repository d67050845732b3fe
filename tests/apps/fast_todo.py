"""A components todo list whose field keeps its text in state through a sync
``on_change`` and adds it in an async ``on_submit``: typing fast, then Enter,
must add exactly what was typed (events run in arrival order)."""

import flet as ft
from quart import Quart

from quart_flet import flet_blueprint


@ft.component
def Todos() -> ft.Control:
    items, set_items = ft.use_state(())
    draft, set_draft = ft.use_state("")

    def typed(e: ft.Event[ft.TextField]) -> None:  # sync: runs on the pool
        set_draft(e.control.value)

    async def add(e: ft.Event[ft.TextField]) -> None:
        set_items((*items, draft))
        set_draft("")

    return ft.Column(
        [
            ft.TextField(value=draft, label="New todo", on_change=typed, on_submit=add),
            *[ft.Text(f"todo: {item}") for item in items],
            ft.Text(f"{len(items)} todos"),
        ]
    )


def main(page: ft.Page) -> None:
    page.render(Todos)


app = Quart(__name__)
app.register_blueprint(flet_blueprint(main), url_prefix="/todo")
