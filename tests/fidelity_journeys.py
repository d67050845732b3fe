"""Journeys through the apps of tests/apps/fidelity.py, each written once
against :class:`Driver` and run two ways with the same assertions: through
``quart_flet.testing`` (tests/testing/test_fidelity_harness.py) and in real Chromium
against Hypercorn (tests/e2e/test_fidelity_browser.py). A step that passes one
way and fails the other is a difference between the harness and the
browser."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class Driver(Protocol):
    """What a person does and reads, by visible text or accessible name."""

    async def open(self, mount: str) -> None:
        """Open the app mounted at ``/<mount>/`` in a new tab."""

    async def see(self, text: str) -> None:
        """Wait until a control shows exactly ``text``."""

    async def not_see(self, text: str) -> None:
        """Wait until nothing reachable shows ``text`` (behind a modal
        barrier counts as not seen: the browser takes it out of reach)."""

    async def tap(self, name: str) -> None:
        """Tap what shows ``name`` (its text or its label)."""

    async def type(self, label: str, text: str) -> None:
        """Type ``text`` key by key into the field labelled ``label``."""

    async def escape(self) -> None:
        """Press Escape: closes the top dialog or sheet."""

    async def slider_right(self, label: str) -> None:
        """Focus the slider and press the Right arrow key once."""

    async def open_menu(self, label: str, button: int) -> None:
        """Open the dropdown labelled ``label`` (in the browser, by its
        ``button``-th arrow button: the semantics tree names no dropdown)."""

    async def select_all(self) -> None:
        """Tap a DataTable's select-all checkbox."""


Journey = Callable[[Driver], Awaitable[None]]
JOURNEYS: dict[str, Journey] = {}


def journey(function: Journey) -> Journey:
    JOURNEYS[function.__name__] = function
    return function


@journey
async def alert_dialog_is_a_barrier(d: Driver) -> None:
    await d.open("dialogs")
    await d.tap("Ask")
    await d.see("It cannot be undone")
    await d.see("Delete the file?")
    await d.not_see("Behind")  # behind the barrier: out of reach
    await d.tap("Keep it")
    await d.see("events: dialog dismiss")
    await d.tap("Ask")
    await d.see("It cannot be undone")
    await d.escape()
    await d.see("events: dialog dismiss | dialog dismiss")
    await d.tap("Behind")
    await d.see("events: dialog dismiss | dialog dismiss | behind")


@journey
async def bottom_sheet_is_a_barrier(d: Driver) -> None:
    await d.open("dialogs")
    await d.tap("Slide up")
    await d.see("Sheet contents")
    await d.not_see("Behind")
    await d.not_see("events: none")  # even the page's texts are behind it
    await d.tap("Sheet button")
    await d.escape()
    await d.see("events: sheet button | sheet dismiss")
    await d.tap("Behind")
    await d.see("events: sheet button | sheet dismiss | behind")


@journey
async def slider_arrow_keys(d: Driver) -> None:
    await d.open("sliders")
    await d.slider_right("20%")
    await d.see("events: start 20 | change 25.0 | end 25.0")
    await d.slider_right("25%")
    await d.see("events: start 20 | change 25.0 | end 25.0 | start 25.0 | change 30.0 | end 30.0")


@journey
async def text_field_error_and_helper(d: Driver) -> None:
    await d.open("fields")
    await d.see("Your work address")
    await d.type("Mail", "ab")
    await d.see("events: change a | change ab")
    await d.see("Needs an @")
    await d.type("Mail", "@c")
    await d.see("events: change a | change ab | change ab@ | change ab@c")
    await d.not_see("Needs an @")
    await d.see("Your work address")


@journey
async def checkbox_switch_radio(d: Driver) -> None:
    await d.open("toggles")
    await d.tap("Agree")
    await d.see("events: checkbox True")
    await d.tap("Dark mode")
    await d.see("events: checkbox True | switch True")
    await d.tap("Milk")
    await d.see("events: checkbox True | switch True | radio milk")
    await d.tap("Agree")
    await d.tap("Tea")
    await d.see("events: checkbox True | switch True | radio milk | checkbox False | radio tea")


@journey
async def dropdown_pick_and_type(d: Driver) -> None:
    await d.open("dropdowns")
    await d.not_see("Green")  # the menu is closed
    await d.open_menu("Colour", 0)
    await d.tap("Green")
    await d.see("events: text Green | select g")  # the field's text, then the choice
    await d.not_see("Red")  # the menu closed
    await d.tap("Fruit")
    # a tap in an editable dropdown whose text the app never set reports its
    # empty text, and opens the menu
    await d.see("events: text Green | select g | fruit text ")
    await d.see("Banana")
    await d.type("Fruit", "Ba")
    await d.see("events: text Green | select g | fruit text  | fruit text B | fruit text Ba")


@journey
async def snack_bar_action(d: Driver) -> None:
    await d.open("notices")
    await d.tap("Send")
    await d.see("Message sent")
    await d.tap("Behind")  # a snack bar is no barrier
    await d.see("events: behind")
    await d.tap("Unsend")
    await d.see("events: behind | snack action")
    await d.not_see("Message sent")  # its action hides it


@journey
async def banner_actions(d: Driver) -> None:
    await d.open("notices")
    await d.tap("Go offline")
    await d.see("You are offline")
    await d.tap("Behind")  # a banner is no barrier
    await d.see("events: behind")
    await d.tap("Retry")
    await d.see("events: behind | banner button")
    await d.not_see("You are offline")


@journey
async def data_table_sort_and_select_all(d: Driver) -> None:
    await d.open("tables")
    await d.tap("Planet")
    await d.see("events: sort 0 True")
    await d.tap("Planet")
    await d.see("events: sort 0 True | sort 0 False")
    await d.select_all()
    await d.see("events: sort 0 True | sort 0 False | all True")


@journey
async def expansion_panel_and_tile(d: Driver) -> None:
    await d.open("expanders")
    await d.not_see("Ships in two days")
    await d.tap("Expand")
    await d.see("events: panel 0 True")
    await d.see("Ships in two days")
    await d.not_see("Thirty days to return")
    await d.tap("Returns")
    await d.see("events: panel 0 True | tile True")
    await d.see("Thirty days to return")


@journey
async def tabs_switch_views(d: Driver) -> None:
    await d.open("tabs")
    await d.see("Nothing new")
    await d.not_see("Old letters")
    await d.tap("Archive")
    await d.see("events: tabs 1")
    await d.see("Old letters")
    await d.not_see("Nothing new")


@journey
async def navigation_bar_and_rail(d: Driver) -> None:
    await d.open("navigation")
    await d.tap("Find")
    await d.see("events: bar 1")
    await d.tap("Bin")
    await d.see("events: bar 1 | rail 1")
