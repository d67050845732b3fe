"""The standard library's private names (asyncio's loop hooks). Imports the
standard library only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["get_running_loop_or_none", "set_running_loop"]

#: asyncio's own hooks behind get_running_loop(), public in all but name
#: (asyncio.events exports both)
get_running_loop_or_none: Callable[[], asyncio.AbstractEventLoop | None] = asyncio._get_running_loop
set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = asyncio._set_running_loop
