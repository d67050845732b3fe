"""What a person does in the browser, as the Flet web client turns it into
messages: the finders and actions of :class:`FletUser`, named as in
``flet.testing.Tester``."""

from __future__ import annotations

import math
from typing import Any

from quart_flet.testing import finders
from quart_flet.testing.client import FletClient
from quart_flet.testing.finders import Finder
from quart_flet.testing.tree import DIALOGS, Control, menu_options, option_key, option_label

_TOGGLES = frozenset({"Checkbox", "CupertinoCheckbox", "Switch", "CupertinoSwitch"})
_RADIOS = frozenset({"Radio", "CupertinoRadio"})
_TEXT_INPUTS = frozenset({"TextField", "CupertinoTextField", "SearchBar"})
_SLIDERS = frozenset({"Slider", "CupertinoSlider"})
_DESTINATIONS = frozenset({"NavigationBarDestination", "NavigationRailDestination"})
_DROPDOWNS = frozenset({"Dropdown", "DropdownM2"})

# What takes a tap on a control, by the handler the app must set: named in
# the error when a tap reaches nothing.
_TAP_HANDLERS = {
    "DataColumn": "on_sort",
    "DataRow": "on_select_change",
    "DataCell": "on_tap (or the row's on_select_change)",
    "ExpansionPanel": "the ExpansionPanelList's on_change (the header only with can_tap_header)",
    "Checkbox": "on_change",
    "Switch": "on_change",
    "Chip": "on_click or on_select",
    "GestureDetector": "on_tap, on_tap_down or on_tap_up",
    "Container": "on_click",
    "ListTile": "on_click",
}


class ActionError(AssertionError):
    """An action a person could not do in the browser (a disabled button,
    typing into a text, tapping what has no handler)."""


class FletUser(FletClient):
    """One user in one browser tab, made by :meth:`FletHarness.open_user`.

    Finders are lazy and re-read the screen each time. Actions take a Finder
    or a piece of text, wait up to ``timeout`` for it to designate exactly one
    control, then send what the Flet web client sends. Check results with
    ``await user.should_see(...)``: it waits for the server's patches.
    """

    # ---- finders -------------------------------------------------------------

    def _make(self, spec: tuple[str, finders.Match]) -> Finder:
        return Finder(self, *spec)

    def find_by_text(self, text: str) -> Finder:
        """Controls that paint exactly ``text``."""
        return self._make(finders.by_text(text))

    def find_by_text_containing(self, pattern: str) -> Finder:
        """Controls with a text matching the regular expression ``pattern``."""
        return self._make(finders.by_text_containing(pattern))

    def find_by_key(self, key: Any) -> Finder:
        return self._make(finders.by_key(key))

    def find_by_tooltip(self, value: str) -> Finder:
        return self._make(finders.by_tooltip(value))

    def find_by_icon(self, icon: Any) -> Finder:
        """Controls showing ``icon`` (``ft.Icons.ADD``): Icons, and buttons by their icon."""
        return self._make(finders.by_icon(icon))

    def find_by_type(self, kind: type | str) -> Finder:
        """Controls of a type: ``ft.Checkbox`` or ``"Checkbox"``."""
        return self._make(finders.by_type(kind))

    def find_by_semantics_identifier(self, identifier: str) -> Finder:
        return self._make(finders.by_semantics_identifier(identifier))

    # ---- pointer -------------------------------------------------------------

    async def tap(self, what: Finder | str, timeout: float | None = None) -> None:
        """Tap (click) what ``what`` designates, as the browser would: the
        nearest control that takes the tap handles it (a button around a
        text, a checkbox by its label, a radio in its group...)."""
        control = await self.find(what, timeout)
        if control.type == "SnackBar" and control.get("action") in control.texts():
            return await self._snack_action(control)
        for node in control.ancestors():
            if node.type in DIALOGS:
                break
            handled = await self._tap_on(node, control)
            if handled:
                await self._after_tap(node)
                return
        self._enabled(control)
        wants = next(
            (
                f"{n.type} takes a tap through {_TAP_HANDLERS[n.type]}"
                for n in control.ancestors()
                if n.type in _TAP_HANDLERS
            ),
            "neither it nor a parent has on_click (or another tap handler)"
            if control.type != "Text"
            else "a Text takes no tap itself: neither it nor a parent has on_click",
        )
        raise ActionError(f"nothing handles a tap on {control.describe()}: {wants}")

    async def _after_tap(self, node: Control) -> None:
        """A SnackBarAction's press hides its snack bar (Flutter's
        ``hideCurrentSnackBar``), which the app then hears as a dismiss."""
        if node.type == "SnackBarAction":
            snack = next((a for a in node.ancestors() if a.type == "SnackBar"), None)
            if snack is not None and snack.get("open"):
                await self.close_dialog(snack)

    async def _snack_action(self, snack: Control) -> None:
        """A SnackBar's ``action`` given as a string: the client draws a
        SnackBarAction that sends the SnackBar's own "action" event."""
        await self.send_event(snack, "action")
        await self.close_dialog(snack)

    async def _tap_on(self, node: Control, origin: Control | None = None) -> bool:
        kind = node.type
        if kind in _DROPDOWNS:
            await self._open_menu(node)
        elif (
            kind == "DropdownOption"
            and node.parent is not None
            and node.parent.id in self.open_menus
        ):
            await self._choose(node.parent, node)
        elif kind == "DataColumn" and node.handles("sort"):
            await self._sort(node)
        elif kind == "ExpansionPanel":
            return await self._tap_panel(node, origin)
        elif kind in _TOGGLES:
            await self.toggle(node)
        elif kind in _RADIOS:
            await self._select_radio(node)
        elif kind == "ExpansionTile":
            self._enabled(node)
            expanded = not node.get("expanded", node.get("initially_expanded", False))
            await self.update_props(node, {"expanded": expanded})
            await self.send_event(node, "change", expanded)
        elif kind in _DESTINATIONS and node.parent is not None:
            bar = node.parent
            self._enabled(bar)
            index = bar.props.get("destinations", []).index(node)
            await self.update_props(bar, {"selected_index": index})
            await self.send_event(bar, "change", index)
        elif kind == "Tab" and node.parent is not None:
            index = node.parent.props.get("tabs", []).index(node)
            tabs = next((a for a in node.ancestors() if a.type == "Tabs"), None)
            if tabs is None:
                return False
            await self.update_props(tabs, {"selected_index": index})
            await self.send_event(tabs, "change", index)
        elif kind == "Chip" and node.handles("select") and not node.handles("click"):
            self._enabled(node)
            selected = not node.get("selected", False)
            await self.update_props(node, {"selected": selected})
            await self.send_event(node, "select", selected)
        elif kind == "DataRow" and node.handles("select_change"):
            await self.send_event(node, "select_change", not node.get("selected", False))
        elif kind == "DataCell" and node.handles("tap"):
            await self.send_event(node, "tap")
        elif kind == "GestureDetector" and any(
            node.handles(e) for e in ("tap", "tap_down", "tap_up")
        ):
            self._enabled(node)
            where = {"k": "mouse", "l": {"x": 0.0, "y": 0.0}, "g": {"x": 0.0, "y": 0.0}}
            await self.send_event(node, "tap_down", where)
            await self.send_event(node, "tap_up", where)
            await self.send_event(node, "tap", where)
        elif node.handles("click"):
            self._enabled(node)
            if kind in _TEXT_INPUTS:
                await self._focus(node)
            await self.send_event(node, "click")
        elif kind in _TEXT_INPUTS:
            self._enabled(node)
            await self._focus(node)
        else:
            return False
        return True

    async def long_press(self, what: Finder | str, timeout: float | None = None) -> None:
        control = await self.find(what, timeout)
        for node in control.ancestors():
            if node.handles("long_press"):
                self._enabled(node)
                await self.send_event(node, "long_press")
                return
        raise ActionError(f"nothing handles a long press on {control.describe()}")

    # ---- inputs --------------------------------------------------------------

    async def enter_text(
        self, what: Finder | str, text: str, *, submit: bool = False, timeout: float | None = None
    ) -> None:
        """Replace a text field's text with ``text`` (one ``on_change``, as
        Flutter's ``enterText``), then press Enter if ``submit``."""
        field = self._input(await self.find(what, timeout), _TEXT_INPUTS | _DROPDOWNS, "type into")
        if field.type in _DROPDOWNS:
            return await self._type_in_dropdown(field, text, replace=True, submit=submit)
        if field.get("read_only"):
            raise ActionError(f"{field.describe()} is read-only")
        await self._focus(field)
        await self.update_props(field, {"value": text})
        await self.send_event(field, "change", text)
        if submit:
            await self.send_event(field, "submit", text)

    async def type_text(self, what: Finder | str, text: str, timeout: float | None = None) -> None:
        """Type ``text`` one character at a time: one ``on_change`` per key."""
        field = self._input(await self.find(what, timeout), _TEXT_INPUTS | _DROPDOWNS, "type into")
        if field.type in _DROPDOWNS:
            return await self._type_in_dropdown(field, text, replace=False, submit=False)
        await self._focus(field)
        value = str(field.get("value", ""))
        for char in text:
            value += char
            await self.update_props(field, {"value": value})
            await self.send_event(field, "change", value)

    async def submit(self, what: Finder | str, timeout: float | None = None) -> None:
        """Press Enter in a text field."""
        field = self._input(await self.find(what, timeout), _TEXT_INPUTS, "submit")
        await self.send_event(field, "submit", field.get("value", ""))

    async def toggle(self, what: Finder | str | Control, timeout: float | None = None) -> None:
        """Flip a Checkbox or Switch (a tristate checkbox cycles false, true, null)."""
        control = what if isinstance(what, Control) else await self.find(what, timeout)
        if control.type == "DataTable":
            return await self._select_all(control)
        box = self._input(control, _TOGGLES, "toggle")
        value = box.props.get("value")
        if box.get("tristate") and box.type.endswith("Checkbox"):
            new: bool | None = True if value is False else (None if value else False)
        else:
            new = not value
        await self.update_props(box, {"value": new})
        await self.send_event(box, "change", new)

    async def select(self, what: Finder | str, option: Any, timeout: float | None = None) -> None:
        """Choose ``option`` (its text or key) in a Dropdown, a RadioGroup, a
        NavigationBar/Rail (a label or an index) or Tabs (a label or an index)."""
        control = await self.find(what, timeout)
        for node in control.ancestors():
            if node.type in ("Dropdown", "DropdownM2"):
                return await self._select_option(node, option)
            if node.type == "RadioGroup":
                return await self._select_radio_value(node, option)
            if node.type in ("NavigationBar", "NavigationRail", "Tabs"):
                return await self._select_index(node, option)
        raise ActionError(f"{control.describe()} is not something to select in")

    async def _select_option(self, dropdown: Control, option: Any) -> None:
        """Open the menu and tap ``option`` in it, as a person does."""
        self._enabled(dropdown)
        options = [o for o in dropdown.props.get("options") or [] if isinstance(o, Control)]
        chosen = next((o for o in options if option in (o.props.get("text"), option_key(o))), None)
        if chosen is None or chosen.get("disabled"):
            names = [option_label(o) for o in options]
            raise ActionError(f"{dropdown.describe()} has no option {option!r}: {names}")
        await self._open_menu(dropdown)
        await self._choose(dropdown, chosen)

    async def _open_menu(self, dropdown: Control) -> None:
        """A tap on a dropdown's field opens its menu (an editable one also
        takes the focus); a tap while it is open closes it."""
        self._enabled(dropdown)
        if dropdown.id in self.open_menus:
            self.open_menus.discard(dropdown.id)
            self._notify()
            return
        if dropdown.get("editable"):
            await self._focus(dropdown)
        self.open_menus.add(dropdown.id)
        self._notify()

    async def _choose(self, dropdown: Control, option: Control) -> None:
        """A tap on an option of an open menu (``dropdown.dart``): the field's
        text becomes the option's label, which the client reports as
        "text_change", then the selection, as "select"; the menu closes."""
        self._enabled(dropdown)
        if option.disabled:
            raise ActionError(f"{option.describe()} is disabled")
        self.open_menus.discard(dropdown.id)
        label, value = option_label(option), option_key(option)
        if label is not None and label != dropdown.props.get("text"):
            await self.update_props(dropdown, {"text": label})
            await self.send_event(dropdown, "text_change", label)
        await self.update_props(dropdown, {"value": value})
        await self.send_event(dropdown, "select", value)

    async def _type_in_dropdown(
        self, dropdown: Control, text: str, *, replace: bool, submit: bool
    ) -> None:
        """Typing into an editable dropdown: each change of its text is a
        "text_change"; the menu opens (filtered with ``enable_filter``).
        Enter picks the first option the menu still lists."""
        if not dropdown.get("editable"):
            raise ActionError(
                f"{dropdown.describe()} is not editable (editable=True lets a person type in it)"
            )
        await self._focus(dropdown)
        self.open_menus.add(dropdown.id)
        current = "" if replace else str(dropdown.props.get("text") or "")
        steps = [text] if replace else [current + text[: i + 1] for i in range(len(text))]
        for value in steps:
            await self.update_props(dropdown, {"text": value})
            await self.send_event(dropdown, "text_change", value)
        if submit:
            listed = menu_options(dropdown)
            if listed:
                await self._choose(dropdown, listed[0])

    async def _sort(self, column: Control) -> None:
        """A tap on a sortable column's header: Flutter's DataTable asks to
        sort ascending unless this column is sorted ascending already."""
        table = column.parent
        if table is None:
            return
        self._enabled(table)
        columns = [c for c in table.props.get("columns") or [] if isinstance(c, Control)]
        index = columns.index(column)
        ascending = table.get("sort_column_index") != index or not table.get("sort_ascending")
        await self.send_event(column, "sort", {"ci": index, "asc": ascending})

    async def _select_all(self, table: Control) -> None:
        """The DataTable's select-all checkbox (shown with
        ``show_checkbox_column`` when a row takes on_select_change): checked
        when every such row is selected; a tap selects all, or clears all
        when all were selected. With ``on_select_all`` the app hears it;
        without, each row whose state changes hears on_select_change."""
        self._enabled(table)
        rows = [r for r in table.props.get("rows") or [] if isinstance(r, Control) and r.visible]
        selectable = [r for r in rows if r.handles("select_change")]
        if not table.get("show_checkbox_column") or not selectable:
            raise ActionError(
                f"{table.describe()} shows no select-all checkbox: it needs "
                "show_checkbox_column=True and rows with on_select_change"
            )
        checked = not all(r.get("selected") for r in selectable)
        if table.handles("select_all"):
            await self.send_event(table, "select_all", checked)
            return
        for row in selectable:
            if bool(row.get("selected")) != checked:
                await self.send_event(row, "select_change", checked)

    async def _tap_panel(self, panel: Control, origin: Control | None) -> bool:
        """ExpansionPanel (``expansion_panel.dart``): its expand button, or
        with ``can_tap_header`` its header, toggles it; the list hears
        "change" with the panel's index and new state."""
        from_header = origin is not None and origin is not panel
        if from_header and not panel.get("can_tap_header"):
            return False
        if not from_header and panel.get("can_tap_header"):
            return False  # no expand button to press: the header takes taps
        panels = panel.parent
        if panels is None or panels.type != "ExpansionPanelList":
            return False
        self._enabled(panels)
        visible = [
            p for p in panels.props.get("controls") or [] if isinstance(p, Control) and p.visible
        ]
        index = visible.index(panel)
        expanded = not panel.get("expanded", False)
        await self.update_props(panel, {"expanded": expanded})
        await self.send_event(
            panels, "change", {"index": index, "expanded": expanded, "data": index}
        )
        return True

    async def _select_radio(self, radio: Control) -> None:
        group = next((a for a in radio.ancestors() if a.type == "RadioGroup"), None)
        if group is None:
            raise ActionError(f"{radio.describe()} is not in a RadioGroup")
        self._enabled(radio)
        await self._select_radio_value(group, radio.props.get("value"))

    async def _select_radio_value(self, group: Control, value: Any) -> None:
        self._enabled(group)
        radios = [c for c in _descendants(group) if c.type in _RADIOS]
        by_label = next((r for r in radios if r.props.get("label") == value), None)
        if by_label is not None:
            value = by_label.props.get("value")
        elif not any(r.props.get("value") == value for r in radios):
            choices = [r.props.get("label") or r.props.get("value") for r in radios]
            raise ActionError(f"no radio {value!r} in the group: {choices}")
        await self.update_props(group, {"value": value})
        await self.send_event(group, "change", value)

    async def _select_index(self, control: Control, option: Any) -> None:
        self._enabled(control)
        if isinstance(option, int):
            index = option
        else:
            items = [
                c
                for c in _descendants(control)
                if c.type in (*_DESTINATIONS, "Tab") and option in c.texts()
            ]
            if not items or items[0].parent is None:
                raise ActionError(f"{control.describe()} has nothing labelled {option!r}")
            item, parent = items[0], items[0].parent
            siblings = parent.props.get("destinations") or parent.props.get("tabs")
            index = list(siblings or []).index(item)
        await self.update_props(control, {"selected_index": index})
        await self.send_event(control, "change", index)

    async def set_value(
        self, what: Finder | str, value: float, timeout: float | None = None
    ) -> None:
        """Drag a Slider to ``value``: change_start, change, change_end."""
        slider = self._input(await self.find(what, timeout), _SLIDERS, "slide")
        low, high = _range(slider)
        if not low <= value <= high:
            raise ActionError(f"{value} is outside {slider.describe()}'s range {low}..{high}")
        await self._slide(slider, _unlerp(slider, value))

    async def increase(
        self, what: Finder | str, times: int = 1, timeout: float | None = None
    ) -> None:
        """Press the Right arrow key on a focused Slider ``times`` times: each
        press moves it by a division, or by 5% of its range without
        divisions, and is a change_start, change and change_end."""
        await self._arrow(what, times, 1, timeout)

    async def decrease(
        self, what: Finder | str, times: int = 1, timeout: float | None = None
    ) -> None:
        """Press the Left arrow key on a focused Slider ``times`` times."""
        await self._arrow(what, times, -1, timeout)

    async def _arrow(
        self, what: Finder | str, times: int, sign: int, timeout: float | None
    ) -> None:
        slider = self._input(await self.find(what, timeout), _SLIDERS, "slide")
        await self._focus(slider)
        divisions = slider.get("divisions")
        unit = 1.0 / int(divisions) if divisions else 0.05  # Flutter's _adjustmentUnit off iOS
        for _ in range(times):
            position = _unlerp(slider, float(slider.get("value", _range(slider)[0])))
            await self._slide(slider, min(1.0, max(0.0, position + sign * unit)), snap=False)

    async def _slide(self, slider: Control, position: float, snap: bool = True) -> None:
        """Flutter's Slider works on a 0..1 position: the value the client
        sends is ``min + position * (max - min)`` (snapped to a division), so
        it carries the float error the browser's does (30.000000000000004).
        A drag snaps to divisions; an arrow key adds a division unsnapped."""
        start = _lerp(slider, _unlerp(slider, float(slider.get("value", _range(slider)[0]))))
        value = _lerp(slider, _discretize(slider, position) if snap else position)
        await self.send_event(slider, "change_start", start)
        if value != slider.get("value"):
            await self.update_props(slider, {"value": value})
            await self.send_event(slider, "change", value)
        await self.send_event(slider, "change_end", value)

    # ---- dialogs, routes -------------------------------------------------------

    async def dismiss(self, what: Finder | str | None = None, timeout: float | None = None) -> None:
        """Close a dialog, sheet or snack bar as a person does (tapping the
        barrier, Escape, a swipe): the top one, or the one around ``what``."""
        if what is None:
            dialogs = await self.wait_until(
                lambda: self.tree.open_dialogs() or None,
                timeout,
                lambda: f"no dialog is open.\n{self.summary()}",
            )
            dialog = dialogs[-1]
        else:
            control = await self.find(what, timeout)
            found = next((a for a in control.ancestors() if a.type in DIALOGS), None)
            if found is None:
                raise ActionError(f"{control.describe()} is not in a dialog")
            dialog = found
        if dialog.get("modal"):
            raise ActionError(f"{dialog.describe()} is modal: only its own buttons close it")
        await self.close_dialog(dialog)

    async def go(self, route: str) -> None:
        """Open ``route`` in the address bar (or follow a link to it)."""
        await self.change_route(route, push=True)

    async def back(self) -> None:
        """The browser's Back button."""
        if len(self.history) < 2:
            raise ActionError("there is no page to go back to in this tab's history")
        self.history.pop()
        await self.change_route(self.history[-1], push=False)

    async def pop_view(self) -> None:
        """The AppBar's back arrow: the page's ``on_view_pop`` for the top view."""
        views = self.tree.views()
        if len(views) < 2:
            raise ActionError("there is only one view: nothing to pop")
        top = views[-1]
        route = top.get("route", str(top.id))
        await self.send_event_always(self.tree.page, "view_pop", {"route": route})

    # ---- helpers ----------------------------------------------------------------

    def _enabled(self, control: Control) -> None:
        if control.disabled:
            raise ActionError(f"{control.describe()} is disabled")

    def _input(self, control: Control, kinds: frozenset[str], verb: str) -> Control:
        node = next((a for a in control.ancestors() if a.type in kinds), None)
        if node is None:
            node = next((c for c in _descendants(control) if c.type in kinds), None)
        if node is None:
            raise ActionError(f"cannot {verb} {control.describe()}")
        self._enabled(node)
        return node

    async def _focus(self, control: Control) -> None:
        if self.focused == control.id:
            return
        previous = self.tree.index.get(self.focused) if self.focused is not None else None
        self.focused = control.id
        if previous is not None:
            await self.send_event(previous, "blur")
        await self.send_event(control, "focus")
        if (
            control.type in _DROPDOWNS
            and control.get("editable")
            and control.props.get("text") is None
            and control.props.get("value") is None
        ):
            # dropdown.dart's controller listener: the cursor the tap puts in
            # the empty field is a change, and its text "" differs from the
            # app's unset text, so the client reports it (seen in Chromium)
            await self.update_props(control, {"text": ""})
            await self.send_event(control, "text_change", "")


def _range(slider: Control) -> tuple[float, float]:
    return float(slider.get("min", 0.0)), float(slider.get("max", 1.0))


def _unlerp(slider: Control, value: float) -> float:
    low, high = _range(slider)
    return (value - low) / (high - low) if high > low else 0.0


def _lerp(slider: Control, position: float) -> float:
    low, high = _range(slider)
    return position * (high - low) + low


def _discretize(slider: Control, position: float) -> float:
    divisions = slider.get("divisions")
    if not divisions:
        return position
    return math.floor(position * int(divisions) + 0.5) / int(divisions)  # Dart's round()


def _descendants(control: Control) -> list[Control]:
    found: list[Control] = []
    stack: list[Any] = list(control.props.values())
    while stack:
        value = stack.pop(0)
        if isinstance(value, Control):
            found.append(value)
            stack.extend(value.props.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return found
