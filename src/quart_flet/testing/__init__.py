"""Test a Flet app hosted by quart-flet, through its real WebSocket route.

>>> async with FletHarness(app) as harness:
...     user = await harness.open_user()
...     await user.tap(user.find_by_tooltip("Increment"))
...     await user.should_see("1")

Fixtures for pytest are in :mod:`quart_flet.testing.plugin`. It imports every
room but ``cli``; nothing in the package imports it.
"""

from quart_flet.testing.actions import ActionError, FletUser
from quart_flet.testing.client import Disconnected, SessionCrashed
from quart_flet.testing.fakes import ClientFakes, MethodCall, PickedFile
from quart_flet.testing.finders import Finder, FinderError
from quart_flet.testing.harness import FletHarness, HarnessError, flet_websockets, open_user
from quart_flet.testing.tree import Control, ControlTree, PatchError

__all__ = [
    "ActionError",
    "ClientFakes",
    "Control",
    "ControlTree",
    "Disconnected",
    "Finder",
    "FinderError",
    "FletHarness",
    "FletUser",
    "HarnessError",
    "MethodCall",
    "PatchError",
    "PickedFile",
    "SessionCrashed",
    "flet_websockets",
    "open_user",
]
