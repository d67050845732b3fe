"""pytest fixtures for testing a Flet app on quart-flet (``quart_flet.testing``).

Installed with the package (entry point ``pytest11``). Name your app with
``quart_flet_app = "module:app"`` in the pytest ini options, or override the
``flet_app_under_test`` fixture; then::

    async def test_counter(flet_user):
        await flet_user.tap(flet_user.find_by_tooltip("Increment"))
        await flet_user.should_see("1")

``open_flet_user`` opens more users (a chat between two), with the options
of :meth:`FletHarness.open_user`. Needs pytest-asyncio (auto mode, or mark
the tests ``@pytest.mark.asyncio``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from quart import Quart

from quart_flet.testing import FletHarness, FletUser, HarnessError

try:
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - pytest-asyncio is what runs the async tests
    async_fixture = pytest.fixture  # type: ignore[assignment]

INI_APP = "quart_flet_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_APP, 'the Quart app under test, "module:attribute" (quart_flet.testing)')


def load_app(spec: str) -> Quart:
    """``"package.module:app"`` imported, checked to be a Quart app."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise HarnessError(f'{INI_APP} = {spec!r}: write it as "module:attribute"')
    app = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(app, Quart):
        raise HarnessError(f"{INI_APP} = {spec!r} is {app!r}, not a Quart app")
    return app


@pytest.fixture(name="flet_app_under_test")
def _flet_app_under_test(request: pytest.FixtureRequest) -> Quart:
    """The app to test: override this fixture, or set ``quart_flet_app``."""
    spec = str(request.config.getini(INI_APP) or "")
    if not spec:
        raise HarnessError(
            "no app under test: define a fixture named flet_app_under_test that returns "
            f'your Quart app, or set {INI_APP} = "module:app" in [tool.pytest.ini_options]'
        )
    return load_app(spec)


@async_fixture(name="flet_harness")
async def _flet_harness(flet_app_under_test: Quart) -> AsyncIterator[FletHarness]:
    """The app running for one test (its before/after_serving hooks run)."""
    async with FletHarness(flet_app_under_test) as harness:
        yield harness


@pytest.fixture(name="open_flet_user")
def _open_flet_user(flet_harness: FletHarness) -> Callable[..., Awaitable[FletUser]]:
    """``await open_flet_user(route="/", headers=..., client=..., fakes=...)``."""
    return flet_harness.open_user


@async_fixture(name="flet_user")
async def _flet_user(flet_harness: FletHarness) -> FletUser:
    """One user on the app's first page."""
    return await flet_harness.open_user()
