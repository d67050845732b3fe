"""The fidelity journeys (tests/fidelity_journeys.py) through
``quart_flet.testing``: the same steps and assertions that
tests/e2e/test_fidelity_browser.py runs in real Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fidelity_journeys import JOURNEYS, Journey

from quart_flet.testing import FletHarness, FletUser
from tests.apps.fidelity import app


class HarnessDriver:
    """A :class:`fidelity_journeys.Driver` over one harness user."""

    def __init__(self, harness: FletHarness) -> None:
        self.harness = harness
        self._user: FletUser | None = None

    @property
    def user(self) -> FletUser:
        assert self._user is not None, "open() first"
        return self._user

    async def open(self, mount: str) -> None:
        self._user = await self.harness.open_user(mount=f"/{mount}")

    async def see(self, text: str) -> None:
        await self.user.should_see(self.user.find_by_text(text))

    async def not_see(self, text: str) -> None:
        await self.user.should_not_see(self.user.find_by_text(text))

    async def tap(self, name: str) -> None:
        await self.user.tap(self.user.find_by_text(name))

    async def type(self, label: str, text: str) -> None:
        await self.user.type_text(self.user.find_by_text(label), text)

    async def escape(self) -> None:
        await self.user.dismiss()

    async def slider_right(self, label: str) -> None:
        await self.user.increase(self.user.find_by_type("Slider"))

    async def open_menu(self, label: str, button: int) -> None:
        await self.user.tap(self.user.find_by_text(label))

    async def select_all(self) -> None:
        await self.user.toggle(self.user.find_by_type("DataTable"))


@pytest.fixture(name="driver")
async def _driver() -> AsyncIterator[HarnessDriver]:
    async with FletHarness(app) as harness:
        yield HarnessDriver(harness)


@pytest.mark.parametrize("name", sorted(JOURNEYS))
async def test_journey_through_the_harness(name: str, driver: Any) -> None:
    journey: Journey = JOURNEYS[name]
    await journey(driver)
