"""The frames a Flet web client sends and reads, and the one place the
harness touches flet: its msgpack codec and action numbers (public names of
``flet.messaging.protocol``; no private flet name is used)."""

from __future__ import annotations

from typing import Any

import msgpack
from flet.controls.base_control import BaseControl
from flet.messaging.protocol import (
    MessageAction,
    configure_encode_object_for_msgpack,
    decode_ext_from_msgpack,
)

REGISTER = MessageAction.REGISTER_CLIENT.value
PATCH = MessageAction.PATCH_CONTROL.value
EVENT = MessageAction.CONTROL_EVENT.value
PROPS = MessageAction.UPDATE_CONTROL_PROPS.value
INVOKE = MessageAction.INVOKE_METHOD.value
CRASHED = MessageAction.SESSION_CRASHED.value

_encode_default = configure_encode_object_for_msgpack(BaseControl)


def encode(action: int, body: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb([action, body], default=_encode_default)
    return b"\x00" + packed


def decode(frame: bytes) -> tuple[int, Any]:
    """A server frame as (action, body); data-channel frames as (-1, bytes)."""
    if frame[:1] == b"\x01":
        return -1, frame[1:]
    message = msgpack.unpackb(frame[1:], strict_map_key=False, ext_hook=decode_ext_from_msgpack)
    return int(message[0]), message[1]


def as_wire_value(value: Any) -> Any:
    """``value`` (an icon, a key, a flet value object) as the client sees it."""
    return msgpack.unpackb(
        msgpack.packb(value, default=_encode_default),
        strict_map_key=False,
        ext_hook=decode_ext_from_msgpack,
    )
