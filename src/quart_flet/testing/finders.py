"""Finders, named as in ``flet.testing.Tester``: lazy queries over what the
browser shows now, resolved again each time they are used."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from quart_flet.testing._wire import as_wire_value
from quart_flet.testing.tree import Control, key_value


class FinderError(AssertionError):
    """A finder matched nothing, or more than the one control an action needs."""


class Screen(Protocol):
    def controls(self) -> list[Control]: ...

    def summary(self) -> str: ...


Match = Callable[[Control], bool]


class Finder:
    """Controls on screen that match; ``.first``, ``.last`` and ``.at(i)``
    narrow it to one. Actions take a Finder (or the text to find)."""

    def __init__(self, screen: Screen, description: str, match: Match) -> None:
        self.screen = screen
        self.description = description
        self.match = match
        self.index: int | None = None

    def _narrowed(self, index: int, label: str) -> Finder:
        finder = Finder(self.screen, f"{self.description}{label}", self.match)
        finder.index = index
        return finder

    @property
    def first(self) -> Finder:
        return self._narrowed(0, ".first")

    @property
    def last(self) -> Finder:
        return self._narrowed(-1, ".last")

    def at(self, index: int) -> Finder:
        return self._narrowed(index, f".at({index})")

    def all(self) -> list[Control]:
        """Every matching control on screen now, in paint order."""
        return [control for control in self.screen.controls() if self.match(control)]

    @property
    def count(self) -> int:
        return len(self.all())

    def resolve(self) -> Control | None:
        """The one control this finder designates now; None while there is
        none; FinderError when it is ambiguous."""
        found = self.all()
        if self.index is not None:
            try:
                return found[self.index]
            except IndexError:
                return None
        if len(found) > 1:
            listed = "\n  ".join(c.describe() for c in found[:10])
            raise FinderError(
                f"{self.description} matches {len(found)} controls, an action needs one "
                f"(use .first, .last or .at(i)):\n  {listed}"
            )
        return found[0] if found else None

    def one(self) -> Control:
        """The one control now, or FinderError saying what is on screen."""
        control = self.resolve()
        if control is None:
            raise FinderError(f"{self.description} matches nothing.\n{self.screen.summary()}")
        return control

    def __repr__(self) -> str:
        return f"<Finder {self.description}>"


def by_text(text: str) -> tuple[str, Match]:
    return f"text {text!r}", lambda c: text in c.texts()


def by_text_containing(pattern: str) -> tuple[str, Match]:
    compiled = re.compile(pattern)
    return (
        f"text containing {pattern!r}",
        lambda c: any(compiled.search(t) for t in c.texts()),
    )


def by_key(key: Any) -> tuple[str, Match]:
    wanted = key_value(as_wire_value(key))
    return f"key {wanted!r}", lambda c: key_value(c.props.get("key")) == wanted


def by_tooltip(value: str) -> tuple[str, Match]:
    def match(control: Control) -> bool:
        tooltip = control.props.get("tooltip")
        if isinstance(tooltip, dict):
            tooltip = tooltip.get("message")
        elif isinstance(tooltip, Control):
            tooltip = tooltip.props.get("message")
        return bool(tooltip == value)

    return f"tooltip {value!r}", match


def by_icon(icon: Any) -> tuple[str, Match]:
    wanted = as_wire_value(icon)

    def match(control: Control) -> bool:
        value = control.props.get("icon")
        if isinstance(value, Control):  # an Icon control given as icon=
            value = value.props.get("icon")
        return value is not None and value == wanted

    return f"icon {icon!r}", match


def by_type(kind: type | str) -> tuple[str, Match]:
    name = kind if isinstance(kind, str) else kind.__name__
    return f"type {name}", lambda c: c.type == name


def by_semantics_identifier(identifier: str) -> tuple[str, Match]:
    return (
        f"semantics identifier {identifier!r}",
        lambda c: c.type == "Semantics" and c.props.get("identifier") == identifier,
    )


def describe_screen(controls: Iterable[Control]) -> str:
    """What a person would read on the screen, one control a line."""
    lines: list[str] = []
    for control in controls:
        texts = control.texts()
        tooltip = control.props.get("tooltip")
        if texts or isinstance(tooltip, str) or control.props.get("key") is not None:
            line = control.describe()
            if isinstance(tooltip, str):
                line += f" tooltip={tooltip!r}"
            lines.append(line)
    if not lines:
        return "On screen: nothing with text."
    return "On screen:\n  " + "\n  ".join(lines[:60])
