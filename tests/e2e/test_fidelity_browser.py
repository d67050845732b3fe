"""The fidelity journeys (tests/fidelity_journeys.py) in real Chromium,
against a real Hypercorn serving tests/apps/fidelity.py: the same steps and
assertions as tests/testing/test_fidelity_harness.py, so a step the harness gets
wrong fails one of the two. One server and one browser for the module; each
journey opens its own tab and finds elements in Flutter's semantics tree,
by text or accessible name."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import CHROMIUM, CHROMIUM_ARGS, Server, require_chromium, start_hypercorn
from fidelity_journeys import JOURNEYS, Journey
from test_browser import ENABLE_SEMANTICS, VIEWPORT

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

READY = 60_000  # ms: the first load of the Flutter client on a busy machine
STEP = 10_000  # ms: one step of a journey
FOCUSED_INPUT = """label => {
  const e = document.activeElement;
  return e && ['INPUT', 'TEXTAREA'].includes(e.tagName) && e.getAttribute('aria-label') === label;
}"""
SCREEN = """() => Array.from(document.querySelectorAll('flt-semantics, input, textarea'))
  .map(e => [e.getAttribute('role'), e.getAttribute('aria-label'),
             e.querySelector('flt-semantics') ? null : e.textContent]
    .filter(x => x).join(' '))
  .filter(line => line)"""


class BrowserDriver:
    """A :class:`fidelity_journeys.Driver` over one Chromium tab."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base
        self.errors: list[str] = []
        self._page: Any = None

    @property
    def page(self) -> Any:
        assert self._page is not None, "open() first"
        return self._page

    async def open(self, mount: str) -> None:
        self._page = await self.browser.new_page(viewport=VIEWPORT)
        await self._page.add_init_script(ENABLE_SEMANTICS)
        self._page.on("pageerror", lambda error: self.errors.append(str(error)))
        await self._page.goto(f"{self.base}/{mount}/")
        await self._page.get_by_text("events: none", exact=True).wait_for(timeout=READY)

    async def close(self) -> None:
        if self._page is not None:
            await self._page.close()

    def _text(self, text: str) -> Any:
        return self.page.get_by_text(text, exact=True)

    def _named(self, name: str) -> Any:
        """An element showing ``name``, or whose accessible name it is."""
        # a NavigationRail destination shows its label, then a line "Tab 2 of 2"
        label = re.compile(rf"^{re.escape(name)}(\n|$)")
        return self.page.get_by_text(label).or_(self.page.get_by_label(label))

    async def on_screen(self) -> list[str]:
        """The texts and accessible names in the semantics tree now."""
        return list(await self.page.evaluate(SCREEN))

    async def _wait(self, locator: Any, state: str, what: str) -> None:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            await locator.first.wait_for(state=state, timeout=STEP)
        except PlaywrightTimeout:
            shown = "\n  ".join(await self.on_screen())
            raise AssertionError(f"Chromium: {what} (waited {STEP} ms)\n  {shown}") from None

    async def see(self, text: str) -> None:
        await self._wait(self._named(text), "visible", f"expected to see {text!r}")

    async def not_see(self, text: str) -> None:
        await self._wait(self._named(text), "detached", f"expected not to see {text!r}")

    async def tap(self, name: str) -> None:
        await self._wait(self._named(name), "visible", f"nothing to tap shows {name!r}")
        await self._named(name).click(timeout=STEP)

    async def type(self, label: str, text: str) -> None:
        field = self.page.get_by_role("textbox", name=label, exact=True)
        await field.focus(timeout=STEP)
        # keys pressed before Flutter's editing element has the focus are lost
        await self.page.wait_for_function(FOCUSED_INPUT, arg=label, timeout=STEP)
        await self.page.keyboard.type(text, delay=50)

    async def escape(self) -> None:
        await self.page.keyboard.press("Escape")

    async def slider_right(self, label: str) -> None:
        slider = self.page.locator(f"[aria-label={json.dumps(label)}] [role=slider]")
        await slider.focus(timeout=STEP)
        await slider.press("ArrowRight", timeout=STEP)

    async def open_menu(self, label: str, button: int) -> None:
        await self.page.get_by_role("button").nth(button).click(timeout=STEP)

    async def select_all(self) -> None:
        await self.page.get_by_role("checkbox").first.click(timeout=STEP)


@pytest.fixture(name="server", scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_chromium()
    server = start_hypercorn(
        "tests.apps.fidelity:app", tmp_path_factory.mktemp("fidelity"), path="/dialogs/"
    )
    yield server
    server.stop()


@pytest_asyncio.fixture(name="browser", scope="module", loop_scope="module")
async def _browser() -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.mark.parametrize("name", sorted(JOURNEYS))
async def test_journey_in_chromium(name: str, server: Server, browser: Any) -> None:
    journey: Journey = JOURNEYS[name]
    driver = BrowserDriver(browser, server.url)
    try:
        await journey(driver)
    finally:
        await driver.close()
    assert not driver.errors, driver.errors
    assert "Traceback" not in server.log(), server.log()
