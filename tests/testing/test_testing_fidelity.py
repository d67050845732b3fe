"""quart_flet.testing against what Flet's web client does (flet-dev/flet,
packages/flet/lib/src/controls/*.dart): what it paints, what takes a tap,
which events it sends with which data. Each app here is small and our own."""

from __future__ import annotations

import asyncio
from typing import Any

import flet as ft
import pytest

from quart_flet import quart_app
from quart_flet.testing import ActionError, FinderError, open_user


def log_text() -> tuple[ft.Text, list[str]]:
    return ft.Text("", key="log"), []


async def test_text_field_error_helper_and_counter_are_painted() -> None:
    def main(page: ft.Page) -> None:
        def check(e: ft.Event[ft.TextField]) -> None:
            field.error = None if "@" in (field.value or "") else "Not an e-mail"

        field = ft.TextField(
            label="E-mail", helper="We never share it", max_length=20, on_change=check
        )
        page.add(field)

    async with open_user(quart_app(main)) as user:
        await user.should_see("We never share it")
        await user.should_see("0/20")
        await user.enter_text("E-mail", "ada")
        await user.should_see("Not an e-mail")
        await user.should_not_see("We never share it")  # the error takes its line
        await user.should_see("3/20")
        assert user.find_by_text("E-mail").one().texts() == [
            "E-mail",
            "ada",
            "Not an e-mail",
            "3/20",
        ]


async def test_snack_bar_string_action_is_shown_and_tappable() -> None:
    def main(page: ft.Page) -> None:
        out = ft.Text("", key="out")

        def undo(e: Any) -> None:
            out.value = "undone"

        def show(e: Any) -> None:
            page.show_dialog(ft.SnackBar(ft.Text("Deleted"), action="Undo", on_action=undo))

        page.add(ft.Button("Delete", on_click=show), out)

    async with open_user(quart_app(main)) as user:
        await user.tap("Delete")
        await user.should_see("Deleted")
        await user.tap("Undo")
        await user.should_see("undone")
        await user.should_not_see("Deleted")  # the action hides its snack bar


async def test_a_modal_dialog_is_a_barrier() -> None:
    def main(page: ft.Page) -> None:
        count = ft.Text("opened 0", key="count")
        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text("Sure?"),
            actions=[ft.TextButton("Close", on_click=lambda e: page.pop_dialog())],
        )

        def open_it(e: Any) -> None:
            count.value = f"opened {int(count.value.split()[1]) + 1}"
            count.update()
            page.show_dialog(dialog)

        page.add(ft.Button("Open dialog", on_click=open_it), count)

    async with open_user(quart_app(main)) as user:
        await user.tap("Open dialog")
        await user.should_see("Sure?")
        await user.should_not_see("opened 1")  # behind the barrier: not in the semantics tree
        with pytest.raises(AssertionError, match="matches nothing"):
            await user.tap("Open dialog", timeout=0.2)
        with pytest.raises(ActionError, match="modal"):
            await user.dismiss()
        await user.tap("Close")
        await user.should_see("opened 1")


async def test_a_bottom_sheet_hides_the_page_behind_it() -> None:
    def main(page: ft.Page) -> None:
        sheet = ft.BottomSheet(ft.Text("Sheet body"))
        page.add(ft.Button("Open sheet", on_click=lambda e: page.show_dialog(sheet)))

    async with open_user(quart_app(main)) as user:
        await user.tap("Open sheet")
        await user.should_see("Sheet body")
        await user.should_not_see("Open sheet")
        await user.dismiss()
        await user.should_see("Open sheet")


async def test_views_rendered_from_a_component() -> None:
    @ft.component
    def App() -> list[ft.View]:
        count, set_count = ft.use_state(0)
        return [
            ft.View(
                route="/",
                controls=[
                    ft.Text(f"Home {count}"),
                    ft.Button("Add", on_click=lambda: set_count(count + 1)),
                ],
            )
        ]

    def main(page: ft.Page) -> None:
        page.render_views(App)

    async with open_user(quart_app(main)) as user:
        await user.should_see("Home 0")
        await user.tap("Add")
        await user.should_see("Home 1")


async def test_dropdown_opens_lists_its_options_and_selects() -> None:
    def main(page: ft.Page) -> None:
        out = ft.Text("", key="out")
        events: list[str] = []

        def log(e: ft.Event[ft.Dropdown], name: str) -> None:
            events.append(f"{name}:{e.data}")
            out.value = " ".join(events)

        page.add(
            ft.Dropdown(
                label="Fruit",
                options=[ft.DropdownOption("apple", "Apple"), ft.DropdownOption("pear", "Pear")],
                on_select=lambda e: log(e, "select"),
                on_text_change=lambda e: log(e, "text"),
            ),
            out,
        )

    async with open_user(quart_app(main)) as user:
        await user.should_not_see("Pear")  # a closed menu paints no options
        await user.tap("Fruit")
        await user.should_see("Pear")
        await user.tap("Pear")
        await user.should_see("text:Pear select:pear")
        await user.should_not_see(user.find_by_type("DropdownOption"))
        await user.select("Fruit", "Apple")
        await user.should_see("text:Pear select:pear text:Apple select:apple")


async def test_editable_dropdown_types_filters_and_picks() -> None:
    def main(page: ft.Page) -> None:
        out = ft.Text("", key="out")

        def typed(e: ft.Event[ft.Dropdown]) -> None:
            out.value = f"typed {e.data}"

        page.add(
            ft.Dropdown(
                label="City",
                editable=True,
                enable_filter=True,
                options=[ft.DropdownOption(t) for t in ("Paris", "Lyon", "Porto")],
                on_text_change=typed,
                on_select=lambda e: setattr(out, "value", f"picked {e.data}"),
            ),
            out,
        )

    async with open_user(quart_app(main)) as user:
        await user.type_text("City", "P")
        await user.should_see("typed P")
        await user.should_see("Porto")
        await user.should_not_see("Lyon")  # filtered out of the open menu
        await user.type_text("City", "or")
        await user.should_see("typed Por")
        await user.tap("Porto")
        await user.should_see("picked Porto")


async def test_data_table_sorts_by_header_and_selects_all() -> None:
    def main(page: ft.Page) -> None:
        names = ["Cleo", "Ada", "Bob"]
        out = ft.Text("", key="out")

        def rows() -> list[ft.DataRow]:
            return [
                ft.DataRow([ft.DataCell(ft.Text(n))], selected=n in chosen, on_select_change=pick)
                for n in names
            ]

        chosen: set[str] = set()

        def pick(e: Any) -> None:
            out.value = f"row {e.data}"

        def sort(e: ft.DataColumnSortEvent) -> None:
            names.sort(reverse=not e.ascending)
            table.sort_column_index, table.sort_ascending = e.column_index, e.ascending
            table.rows = rows()

        def select_all(e: Any) -> None:
            chosen.update(names) if e.data else chosen.clear()
            table.rows = rows()
            out.value = f"all {e.data}"

        table = ft.DataTable(
            columns=[ft.DataColumn(ft.Text("Name"), on_sort=sort)],
            rows=rows(),
            show_checkbox_column=True,
            on_select_all=select_all,
        )
        page.add(table, out, ft.Text("Total"))

    async with open_user(quart_app(main)) as user:
        await user.tap("Name")
        await user.should_see(user.find_by_text("Ada").first)
        assert [t for t in user.texts() if t in ("Ada", "Bob", "Cleo")] == ["Ada", "Bob", "Cleo"]
        await user.tap("Name")  # sorted ascending by it already: descending now
        await user.wait_until(
            lambda: (
                [t for t in user.texts() if t in ("Ada", "Bob", "Cleo")] == ["Cleo", "Bob", "Ada"]
                or None
            ),
            None,
            lambda: f"not sorted descending: {user.texts()}",
        )
        await user.toggle(user.find_by_type("DataTable"))
        await user.should_see("all True")
        await user.toggle(user.find_by_type("DataTable"))
        await user.should_see("all False")
        with pytest.raises(ActionError, match="a Text takes no tap itself"):
            await user.tap("Total")


async def test_tapping_a_column_without_on_sort_names_on_sort() -> None:
    def main(page: ft.Page) -> None:
        page.add(ft.DataTable(columns=[ft.DataColumn("Age")], rows=[]))

    async with open_user(quart_app(main)) as user:
        with pytest.raises(ActionError, match="DataColumn takes a tap through on_sort"):
            await user.tap("Age")


async def test_expansion_panels() -> None:
    def main(page: ft.Page) -> None:
        out = ft.Text("", key="out")

        def changed(e: Any) -> None:
            out.value = f"changed {e.data}"

        page.add(
            ft.ExpansionPanelList(
                controls=[
                    ft.ExpansionPanel(header=ft.Text("First"), content=ft.Text("First body")),
                    ft.ExpansionPanel(
                        header=ft.Text("Second"),
                        content=ft.Text("Second body"),
                        can_tap_header=True,
                    ),
                    ft.ExpansionPanel(),
                ],
                on_change=changed,
            ),
            out,
        )

    async with open_user(quart_app(main)) as user:
        await user.should_not_see("First body")
        await user.should_see("Header Placeholder")
        with pytest.raises(ActionError, match="can_tap_header"):
            await user.tap("First")  # only its expand button takes the tap
        await user.tap(user.find_by_text("Expand").first)
        await user.should_see("First body")
        await user.should_see("changed 0")
        await user.tap("Second")  # can_tap_header
        await user.should_see("Second body")
        await user.tap(user.find_by_text("Expand").last)  # the placeholder panel
        await user.should_see("Body Placeholder")


async def test_slider_sends_values_as_the_client_computes_them() -> None:
    def main(page: ft.Page) -> None:
        out = ft.Text("", key="out")

        def changed(e: ft.Event[ft.Slider]) -> None:
            out.value = f"value {e.control.value!r}"

        page.add(
            ft.Slider(min=0, max=100, divisions=10, value=20, label="{value}%", on_change=changed),
            out,
        )

    async with open_user(quart_app(main)) as user:
        await user.should_not_see("%")  # the label shows only while dragging
        await user.increase(user.find_by_type("Slider"))
        await user.should_see("value 30.000000000000004")
        await user.set_value(user.find_by_type("Slider"), 72.0)  # a drag snaps to a division
        await user.should_see("value 70.0")


async def test_should_see_honours_at_first_and_last() -> None:
    def main(page: ft.Page) -> None:
        page.add(ft.Text("same"), ft.Text("same", visible=True))

    async with open_user(quart_app(main)) as user:
        await user.should_see(user.find_by_text("same").at(1))
        await user.should_see(user.find_by_text("same").last)
        await user.should_not_see(user.find_by_text("same").at(2))
        with pytest.raises(AssertionError, match=r"expected to see text 'same'\.at\(5\)"):
            await user.should_see(user.find_by_text("same").at(5), timeout=0.1)


async def test_settle_waits_for_a_mount_effect() -> None:
    """A listener registered in a mount effect lands after the first paint:
    a tap right after that paint must reach it."""

    @ft.component
    def App() -> ft.Control:
        heard, set_heard = ft.use_state("nothing")
        ready = ft.use_ref(False)

        async def later() -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            ready.current = True

        ft.use_effect(later, [])
        return ft.Column(
            [
                ft.Text("Home page"),
                ft.Text(f"heard {heard}"),
                ft.Button("Go", on_click=lambda: set_heard("go" if ready.current else "too early")),
            ]
        )

    def main(page: ft.Page) -> None:
        page.render(App)

    for _ in range(5):
        async with open_user(quart_app(main)) as user:
            await user.should_see("Home page")
            await user.tap("Go")
            await user.should_see("heard go")


async def test_settle_waits_for_a_running_handler() -> None:
    def main(page: ft.Page) -> None:
        out = ft.Text("idle", key="out")

        async def work(e: Any) -> None:
            out.value = "working"
            out.update()
            for _ in range(20):
                await asyncio.sleep(0)
            out.value = "done"
            out.update()

        page.add(ft.Button("Work", on_click=work), out)

    async with open_user(quart_app(main)) as user:
        await user.tap("Work")
        await user.settle()
        assert "done" in user.texts()
        assert user.busy() == []


async def test_texts_are_in_paint_order() -> None:
    def main(page: ft.Page) -> None:
        page.show_dialog(ft.AlertDialog(content=ft.Text("Body"), title=ft.Text("Title")))

    async with open_user(quart_app(main)) as user:
        await user.should_see("Body")
        assert user.texts() == ["Title", "Body"]


async def test_finder_errors_on_ambiguity_still() -> None:
    def main(page: ft.Page) -> None:
        page.add(ft.Text("twice"), ft.Text("twice"))

    async with open_user(quart_app(main)) as user:
        with pytest.raises(FinderError, match="matches 2 controls"):
            await user.tap("twice")


def test_the_harness_never_builds_the_compressed_client(tmp_path: Any) -> None:
    """In a fresh process with an empty client cache, a harness test writes
    nothing there and starts no compression thread; fetching the client
    still works (prepared on that request)."""
    import subprocess
    import sys

    script = """
import asyncio, os, pathlib, threading, flet as ft
from quart_flet import quart_app
from quart_flet.testing import FletHarness

async def run():
    app = quart_app(lambda page: page.add(ft.Text("hi")))
    async with FletHarness(app) as harness:
        user = await harness.open_user()
        await user.should_see("hi")
        print("threads", [t.name for t in threading.enumerate() if "compress" in t.name])
    cache = pathlib.Path(os.environ["QUART_FLET_CACHE_DIR"])
    print("cached", [p.name for p in cache.rglob("*") if p.is_file()][:5])
    async with FletHarness(app) as harness:
        response = await harness.test_client().get("/")
        print("index", response.status_code, b"flutter" in await response.get_data())

asyncio.run(run())
"""
    cache = tmp_path / "cache"
    env = {**__import__("os").environ, "QUART_FLET_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "threads []" in done.stdout, done.stdout
    assert "cached []" in done.stdout, done.stdout
    assert "index 200 True" in done.stdout, done.stdout
