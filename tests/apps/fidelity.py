"""Small Flet apps, one per family of Flet's controls, each mounted at its
own prefix of one Quart app. Every handler writes what it received (the
event's name and data) into the page's "events: ..." text, so a journey
can assert the same visible text through the harness and in Chromium
(tests/fidelity_journeys.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flet as ft
from quart import Quart

from quart_flet import flet_blueprint

Record = Callable[..., None]


def recorder(page: ft.Page) -> tuple[ft.Text, Record]:
    """A Text listing every event heard so far, and the function that adds one."""
    heard: list[str] = []
    out = ft.Text("events: none")

    def record(name: str, *data: Any) -> None:
        heard.append(" ".join([name, *(str(d) for d in data)]))
        out.value = "events: " + " | ".join(heard)
        page.update()

    return out, record


def dialogs(page: ft.Page) -> None:
    out, record = recorder(page)
    dialog = ft.AlertDialog(
        title=ft.Text("Delete the file?"),
        content=ft.Text("It cannot be undone"),
        actions=[ft.TextButton("Keep it", on_click=lambda e: page.pop_dialog())],
        on_dismiss=lambda e: record("dialog dismiss"),
    )
    sheet = ft.BottomSheet(
        ft.Column(
            [
                ft.Text("Sheet contents"),
                ft.Button("Sheet button", on_click=lambda e: record("sheet button")),
            ],
            tight=True,
        ),
        on_dismiss=lambda e: record("sheet dismiss"),
    )
    page.add(
        ft.Button("Ask", on_click=lambda e: page.show_dialog(dialog)),
        ft.Button("Slide up", on_click=lambda e: page.show_dialog(sheet)),
        ft.Button("Behind", on_click=lambda e: record("behind")),
        out,
    )


def sliders(page: ft.Page) -> None:
    out, record = recorder(page)
    page.add(
        ft.Slider(
            value=20,
            min=0,
            max=100,
            label="{value}%",
            on_change_start=lambda e: record("start", e.control.value),
            on_change=lambda e: record("change", e.control.value),
            on_change_end=lambda e: record("end", e.control.value),
        ),
        out,
    )


def fields(page: ft.Page) -> None:
    out, record = recorder(page)

    def check(e: ft.Event[ft.TextField]) -> None:
        value = e.control.value or ""
        e.control.error = None if "@" in value else "Needs an @"
        record("change", value)

    page.add(
        ft.TextField(label="Mail", helper="Your work address", max_length=12, on_change=check),
        out,
    )


def toggles(page: ft.Page) -> None:
    out, record = recorder(page)
    page.add(
        ft.Checkbox(label="Agree", on_change=lambda e: record("checkbox", e.control.value)),
        ft.Switch(label="Dark mode", on_change=lambda e: record("switch", e.control.value)),
        ft.RadioGroup(
            content=ft.Row(
                [ft.Radio(value="tea", label="Tea"), ft.Radio(value="milk", label="Milk")]
            ),
            on_change=lambda e: record("radio", e.control.value),
        ),
        out,
    )


def dropdowns(page: ft.Page) -> None:
    out, record = recorder(page)
    page.add(
        ft.Dropdown(
            label="Colour",
            options=[
                ft.DropdownOption(key="r", text="Red"),
                ft.DropdownOption(key="g", text="Green"),
            ],
            on_select=lambda e: record("select", e.control.value),
            on_text_change=lambda e: record("text", e.data),
        ),
        ft.Dropdown(
            label="Fruit",
            editable=True,
            options=[ft.DropdownOption("Apple"), ft.DropdownOption("Banana")],
            on_select=lambda e: record("fruit select", e.control.value),
            on_text_change=lambda e: record("fruit text", e.data),
        ),
        out,
    )


APPS: dict[str, Callable[[ft.Page], None]] = {
    "dialogs": dialogs,
    "sliders": sliders,
    "fields": fields,
    "toggles": toggles,
    "dropdowns": dropdowns,
}

app = Quart(__name__)
for _name, _main in APPS.items():
    app.register_blueprint(flet_blueprint(_main, name=_name), url_prefix=f"/{_name}")
