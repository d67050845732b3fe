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


def notices(page: ft.Page) -> None:
    out, record = recorder(page)
    snack = ft.SnackBar(
        ft.Text("Message sent"),
        action="Unsend",
        on_action=lambda e: record("snack action"),
        duration=60_000,
    )

    def close_banner(e: Any) -> None:
        record("banner button")
        page.pop_dialog()

    banner = ft.Banner(
        content=ft.Text("You are offline"),
        actions=[ft.TextButton("Retry", on_click=close_banner)],
    )
    page.add(
        ft.Button("Send", on_click=lambda e: page.show_dialog(snack)),
        ft.Button("Go offline", on_click=lambda e: page.show_dialog(banner)),
        ft.Button("Behind", on_click=lambda e: record("behind")),
        out,
    )


def tables(page: ft.Page) -> None:
    out, record = recorder(page)

    def sorted_by(e: ft.DataColumnSortEvent) -> None:
        table.sort_column_index = e.column_index
        table.sort_ascending = e.ascending
        record("sort", e.column_index, e.ascending)

    def row(name: str) -> ft.DataRow:
        return ft.DataRow(
            [ft.DataCell(ft.Text(name))],
            on_select_change=lambda e: record("row", name, e.data),
        )

    table = ft.DataTable(
        columns=[ft.DataColumn(ft.Text("Planet"), on_sort=sorted_by)],
        rows=[row("Mars"), row("Venus")],
        show_checkbox_column=True,
        on_select_all=lambda e: record("all", e.data),
    )
    page.add(table, out)


def expanders(page: ft.Page) -> None:
    out, record = recorder(page)
    page.add(
        ft.ExpansionPanelList(
            [
                ft.ExpansionPanel(header=ft.Text("Shipping"), content=ft.Text("Ships in two days")),
            ],
            on_change=lambda e: record("panel", e.index, e.expanded),
        ),
        ft.ExpansionTile(
            title=ft.Text("Returns"),
            controls=[ft.Text("Thirty days to return")],
            on_change=lambda e: record("tile", e.data),
        ),
        out,
    )


def tabs(page: ft.Page) -> None:
    out, record = recorder(page)
    page.add(
        ft.Tabs(
            length=2,
            selected_index=0,
            on_change=lambda e: record("tabs", e.data),
            expand=True,
            content=ft.Column(
                [
                    ft.TabBar(tabs=[ft.Tab(label="Inbox"), ft.Tab(label="Archive")]),
                    ft.TabBarView(
                        expand=True,
                        controls=[ft.Text("Nothing new"), ft.Text("Old letters")],
                    ),
                ],
                expand=True,
            ),
        ),
        out,
    )


def navigation(page: ft.Page) -> None:
    out, record = recorder(page)
    page.navigation_bar = ft.NavigationBar(
        destinations=[
            ft.NavigationBarDestination(icon=ft.Icons.HOME, label="Home"),
            ft.NavigationBarDestination(icon=ft.Icons.SEARCH, label="Find"),
        ],
        on_change=lambda e: record("bar", e.data),
    )
    page.add(
        ft.Row(
            [
                ft.NavigationRail(
                    destinations=[
                        ft.NavigationRailDestination(icon=ft.Icons.STAR, label="Starred"),
                        ft.NavigationRailDestination(icon=ft.Icons.DELETE, label="Bin"),
                    ],
                    selected_index=0,
                    on_change=lambda e: record("rail", e.data),
                ),
                out,
            ],
            height=300,
        )
    )


APPS: dict[str, Callable[[ft.Page], None]] = {
    "dialogs": dialogs,
    "sliders": sliders,
    "fields": fields,
    "toggles": toggles,
    "dropdowns": dropdowns,
    "notices": notices,
    "tables": tables,
    "expanders": expanders,
    "tabs": tabs,
    "navigation": navigation,
}

app = Quart(__name__)
for _name, _main in APPS.items():
    app.register_blueprint(flet_blueprint(_main, name=_name), url_prefix=f"/{_name}")
