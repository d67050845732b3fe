"""The client's copy of the control tree, built from the server's messages by
the rules of the Dart client (``Control.fromMap``, ``applyPatch``,
``update``), and what of it a browser shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

COMPONENT = "C"  # a component wrapper: transparent, its body is in "_b"

# Controls that show only while their ``open`` is true.
DIALOGS = frozenset(
    {
        "AlertDialog",
        "CupertinoAlertDialog",
        "BottomSheet",
        "CupertinoBottomSheet",
        "SnackBar",
        "Banner",
        "DatePicker",
        "DateRangePicker",
        "TimePicker",
        "CupertinoActionSheet",
    }
)

# Properties a browser does not paint until the user opens something.
_HIDDEN = {
    "Dropdown": frozenset({"options"}),
    "DropdownM2": frozenset({"options"}),
    "PopupMenuButton": frozenset({"items"}),
    "SubmenuButton": frozenset({"controls"}),
    "Page": frozenset({"window", "_services", "views", "_overlay", "_dialogs"}),
    "View": frozenset({"drawer", "end_drawer"}),
}

# Dialogs that push a modal route: while one is open, only it takes taps
# and only it is in the semantics tree (Flutter's ModalBarrier blocks what
# is behind). SnackBar and Banner live in the page's Scaffold instead.
MODAL_ROUTES = DIALOGS - {"SnackBar", "Banner"}

# Properties whose string value is painted as text, in the order the
# client lays them out (a title above its content, a field's label above
# its value, a helper or error under it).
_TEXT_PROPS = (
    "leading",
    "title",
    "label",
    "prefix",
    "prefix_text",
    "value",
    "text",
    "hint_text",
    "suffix",
    "suffix_text",
    "content",
    "subtitle",
    "helper",
    "helper_text",
    "error",
    "error_text",
    "counter",
    "counter_text",
    "placeholder_text",
    "header",
    "trailing",
    "semantics_label",
)
# Child properties in the order they are painted (the rest after these).
_CHILD_ORDER = {
    name: rank
    for rank, name in enumerate(
        ("leading", "title", "label", "header", "content", "controls", "subtitle", "actions")
    )
}
# A form field's helper and error share one line: the error wins.
_UNDER_FIELD = {"helper": ("error",), "helper_text": ("error", "error_text")}
# Labels a control paints only while the user drags it (a Slider's value
# indicator), or only in a menu that is not open.
_NOT_PAINTED = {
    "Slider": frozenset({"label"}),
    "CupertinoSlider": frozenset({"label"}),
    "RangeSlider": frozenset({"label", "labels"}),
}
_VALUE_IS_TEXT = frozenset(
    {"Text", "TextField", "CupertinoTextField", "Markdown", "SearchBar", "AutoComplete"}
)
_INPUTS = frozenset({"TextField", "CupertinoTextField", "SearchBar"})


class PatchError(AssertionError):
    """The server sent a patch the browser's client could not apply."""


class Control:
    """One control as the client holds it: id, type, and its properties
    (scalars, dicts, lists, child Controls)."""

    __slots__ = ("id", "type", "props", "parent", "__weakref__")

    def __init__(self, id: int, type: str, parent: Control | None) -> None:
        self.id = id
        self.type = type
        self.props: dict[Any, Any] = {}
        self.parent = parent

    def get(self, name: str, default: Any = None) -> Any:
        value = self.props.get(name)
        return default if value is None else value

    @property
    def visible(self) -> bool:
        return self.get("visible", True) is not False

    @property
    def disabled(self) -> bool:
        node: Control | None = self
        while node is not None:
            if node.get("disabled") is True:
                return True
            node = node.parent
        return False

    def handles(self, event: str) -> bool:
        """The client sends ``event`` only when the app set a handler for it."""
        return self.get(f"on_{event}") is True

    def ancestors(self) -> Iterator[Control]:
        """This control, then its parents up to the page (components skipped)."""
        node: Control | None = self
        while node is not None:
            if node.type != COMPONENT:
                yield node
            node = node.parent

    def texts(self) -> list[str]:
        """The strings this control itself paints (not its children's)."""
        found: list[str] = []
        if self.type in ("Text",):
            spans = self.props.get("spans")
            value = self.props.get("value")
            whole = _as_text(value) + "".join(_span_texts(spans))
            if whole:
                found.append(whole)
        elif self.type in ("Dropdown", "DropdownM2"):
            shown = self.field_text()
            for name in ("label", "hint_text", "helper_text", "error_text"):
                value = self.props.get(name)
                if name == "helper_text" and self.props.get("error_text"):
                    continue
                if isinstance(value, str) and value and not (name == "hint_text" and shown):
                    found.append(value)
                if name == "label" and shown:
                    found.append(shown)
            return found
        elif self.type == "ExpansionPanel":
            return self._panel_texts()
        elif self.type == "DropdownOption":
            label = option_label(self)
            return [label] if label else []
        not_painted = _NOT_PAINTED.get(self.type, frozenset())
        for name in _TEXT_PROPS:
            if name == "value" and self.type not in _VALUE_IS_TEXT or self.type == "Text":
                continue
            if name in not_painted:
                continue
            value = self.props.get(name)
            if name == "hint_text" and self.type in _INPUTS and self.props.get("value"):
                continue  # a hint shows only in an empty field
            if any(self.props.get(other) is not None for other in _UNDER_FIELD.get(name, ())):
                continue
            if name == "counter" and self.type in _INPUTS and value is not None:
                value = self._counter()
            if _as_text(value):
                found.append(_as_text(value))
        if self.type in _INPUTS and self.props.get("counter") is None:
            counter = self._counter()
            if counter:
                found.append(counter)
        if self.type == "SnackBar" and isinstance(self.props.get("action"), str):
            found.append(self.props["action"])
        return found

    def _counter(self) -> str | None:
        """A text field's counter as ``form_field.dart`` and Flutter draw it:
        the app's template filled in, else ``length/max_length`` when there
        is a max_length."""
        length = len(str(self.props.get("value") or ""))
        max_length = self.props.get("max_length")
        template = self.props.get("counter")
        if isinstance(template, str):
            left = "None" if max_length is None else str(int(max_length) - length)
            return (
                template.replace("{value_length}", str(length))
                .replace("{max_length}", "None" if max_length is None else str(max_length))
                .replace("{symbols_left}", left)
            )
        if isinstance(max_length, int) and max_length > 0 and template is None:
            return f"{length}/{max_length}"
        return None

    def _panel_texts(self) -> list[str]:
        """An ExpansionPanel's own texts (``expansion_panel.dart``): the
        placeholders the client draws for a missing header or body, and the
        label of its expand button when the header itself does not take taps
        (Flutter's "Expand"/"Collapse")."""
        found: list[str] = []
        if not isinstance(self.props.get("header"), Control):
            found.append("Header Placeholder")
        if self.get("expanded") and not isinstance(self.props.get("content"), Control):
            found.append("Body Placeholder")
        if not self.get("can_tap_header"):
            found.append("Collapse" if self.get("expanded") else "Expand")
        return found

    def field_text(self) -> str | None:
        """What a dropdown's field shows: the text typed into an editable
        one, else its selected option's label (``dropdown.dart``)."""
        typed = self.props.get("text")
        if isinstance(typed, str):
            return typed or None
        return self.selected_option()

    def selected_option(self) -> str | None:
        """A dropdown's selected option as it is painted (its text, else its key)."""
        value = self.props.get("value")
        if value is None:
            return None
        for option in self.props.get("options") or []:
            if isinstance(option, Control) and option_key(option) == value:
                text = option.props.get("text")
                return text if isinstance(text, str) else str(value)
        return str(value)

    def describe(self) -> str:
        texts = self.texts()
        label = f" {texts[0]!r}" if texts else ""
        key = self.props.get("key")
        keyed = f" key={key_value(key)!r}" if key is not None else ""
        return f"{self.type}{label}{keyed}"

    def __repr__(self) -> str:
        return f"<{self.describe()} #{self.id}>"


def _as_text(value: Any) -> str:
    """A property as the client paints it: Dart's ``toString()`` of a number."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def option_key(option: Control) -> Any:
    """What the client sends for a DropdownOption: its key, else its text."""
    key = option.props.get("key")
    if key is not None:
        return key_value(key)
    return option.props.get("text")


def key_value(key: Any) -> Any:
    """A control key as the app wrote it (a plain value, or a Key's value)."""
    if isinstance(key, dict) and "value" in key:
        return key["value"]
    return key


def _span_texts(spans: Any) -> Iterator[str]:
    for span in spans or []:
        props = span.props if isinstance(span, Control) else span
        if isinstance(props, dict):
            if isinstance(props.get("text"), str):
                yield props["text"]
            yield from _span_texts(props.get("spans"))


class ControlTree:
    """The page and every control the client knows, by id."""

    def __init__(self) -> None:
        self.index: dict[int, Control] = {}
        self.page = Control(1, "Page", None)
        self.index[1] = self.page

    # ---- building, as the Dart client does -------------------------------

    def _from_map(self, data: dict[Any, Any], parent: Control | None) -> Control:
        control = Control(int(data["_i"]), str(data["_c"]), parent)
        self.index[control.id] = control
        for key, value in data.items():
            if key not in ("_i", "_c"):
                control.props[key] = self._transform(value, control)
        return control

    def _transform(self, value: Any, parent: Control | None) -> Any:
        if isinstance(value, dict):
            if "_c" in value:
                return self._from_map(value, parent)
            return {k: self._transform(v, parent) for k, v in value.items()}
        if isinstance(value, list):
            return [self._transform(v, parent) for v in value]
        return value

    def merge_page(self, props: dict[Any, Any]) -> None:
        """The register reply's page (``page.update`` in Dart: a deep merge)."""
        self._merge(self.page, self.page.props, props)

    def _merge(self, owner: Control, dst: dict[Any, Any], src: dict[Any, Any]) -> None:
        for key, value in src.items():
            if key in ("_i", "_c"):
                continue
            current = dst.get(key)
            if isinstance(current, dict) and isinstance(value, dict) and "_c" not in value:
                self._merge(owner, current, value)
            elif (
                isinstance(current, Control)
                and isinstance(value, dict)
                and current.id == value.get("_i")
            ):
                self._merge(current, current.props, value)
            elif current != value:
                dst[key] = self._transform(value, owner)

    def apply_props(self, control_id: int, props: dict[str, Any]) -> None:
        """What the client sets locally before it tells the server (``updateControl``)."""
        control = self.index.get(control_id)
        if control is not None:
            self._merge(control, control.props, props)

    def apply_patch(self, control_id: int, patch: list[Any]) -> None:
        """``Control.applyPatch``: paths resolved one operation at a time,
        against the tree as the operations before it left it."""
        root = self.index.get(control_id)
        if root is None:
            return  # the client ignores patches of controls it does not know
        if len(patch) < 2:
            raise PatchError(f"a patch needs a path table and an operation: {patch!r}")
        paths: dict[int, list[Any]] = {}

        def index_paths(node: list[Any], path: list[Any]) -> None:
            paths[node[0]] = path
            if len(node) > 1 and isinstance(node[1], dict):
                for key, child in node[1].items():
                    index_paths(child, [*path, key])

        index_paths(patch[0], [])

        def target(node_index: int) -> tuple[Any, Control]:
            obj: Any = root
            owner = root
            for part in paths[node_index]:
                try:
                    obj = obj.props[part] if isinstance(obj, Control) else obj[part]
                except (KeyError, IndexError, TypeError) as error:
                    raise PatchError(
                        f"patch path {paths[node_index]!r} of control {control_id} "
                        f"does not resolve at {part!r} ({error!r})"
                    ) from None
                if isinstance(obj, Control):
                    owner = obj
            return (obj.props if isinstance(obj, Control) else obj), owner

        for op in patch[1:]:
            kind = op[0]
            try:
                if kind == 0:  # replace
                    obj, owner = target(op[1])
                    obj[op[2]] = self._transform(op[3], owner)
                elif kind == 1:  # add
                    obj, owner = target(op[1])
                    if isinstance(obj, list):
                        obj.insert(op[2], self._transform(op[3], owner))
                    else:
                        obj[op[2]] = self._transform(op[3], owner)
                elif kind == 2:  # remove
                    obj, _ = target(op[1])
                    if isinstance(obj, list):
                        del obj[op[2]]
                    else:
                        del obj[op[2]]
                elif kind == 3:  # move
                    source, _ = target(op[1])
                    dest, _ = target(op[3])
                    moved = source.pop(op[2])
                    if isinstance(dest, list):
                        dest.insert(op[4], moved)
                    else:
                        dest[op[4]] = moved
                else:
                    raise PatchError(f"unknown patch operation {op!r}")
            except PatchError:
                raise
            except (KeyError, IndexError, TypeError, AttributeError) as error:
                raise PatchError(
                    f"cannot apply {op!r} to control {control_id}: {error!r}"
                ) from None

    # ---- what the browser shows -------------------------------------------

    def views(self) -> list[Control]:
        """The page's views; ``page.render_views()`` makes ``views`` a
        component whose body is the list (the client unwraps it)."""
        return [v for v in _unwrapped(self.page.props.get("views")) if isinstance(v, Control)]

    def top_view(self) -> Control | None:
        views = self.views()
        return views[-1] if views else None

    def open_dialogs(self) -> list[Control]:
        """Open dialogs, sheets and snack bars, the latest last."""
        dialogs = self.page.props.get("_dialogs")
        found: list[Control] = []
        if isinstance(dialogs, Control):
            for dialog in _unwrapped(dialogs.props.get("controls")):
                if isinstance(dialog, Control) and dialog.get("open") is True:
                    found.append(dialog)
        return found

    def top_modal(self) -> Control | None:
        """The open dialog or sheet whose barrier covers everything else."""
        modal = [d for d in self.open_dialogs() if d.type in MODAL_ROUTES]
        return modal[-1] if modal else None

    def on_screen(
        self, open_drawers: frozenset[int] = frozenset(), open_menus: frozenset[int] = frozenset()
    ) -> Iterator[Control]:
        """Every control a browser paints and lets a person reach now, in
        paint order: the top view, the page's overlay, open snack bars and
        banners, open menus. An open modal dialog or sheet (or drawer) is a
        barrier: only it is reachable, as in the browser's semantics tree."""
        walk = _Walk(open_drawers, open_menus)
        modal = self.top_modal()
        if modal is not None:
            yield from walk.control(modal)
            yield from walk.menus()
            return
        view = self.top_view()
        if view is not None:
            drawers = [
                d
                for name in ("drawer", "end_drawer")
                if isinstance(d := view.props.get(name), Control) and d.id in open_drawers
            ]
            if drawers:
                for drawer in drawers:
                    yield from walk.control(drawer)
                yield from walk.menus()
                return
            yield from walk.control(view)
        overlay = self.page.props.get("_overlay")
        if isinstance(overlay, Control):
            yield from walk.control(overlay)
        for dialog in self.open_dialogs():
            yield from walk.control(dialog)
        yield from walk.menus()


def _unwrapped(value: Any) -> list[Any]:
    """A list property as the client reads it (``children()``): component
    wrappers replaced by their bodies, a single control as a list of one."""
    while isinstance(value, Control) and value.type == COMPONENT:
        value = value.props.get("_b")
    items = value if isinstance(value, list) else [] if value is None else [value]
    found: list[Any] = []
    for item in items:
        while isinstance(item, Control) and item.type == COMPONENT:
            item = item.props.get("_b")
        if isinstance(item, list):
            found.extend(_unwrapped(item))
        elif item is not None:
            found.append(item)
    return found


class _Walk:
    """One pass over what is painted; open dropdown menus are painted last,
    above everything (Flutter's MenuAnchor overlay)."""

    def __init__(self, open_drawers: frozenset[int], open_menus: frozenset[int]) -> None:
        self.open_drawers = open_drawers
        self.open_menus = open_menus
        self.menus_seen: list[Control] = []

    def control(self, control: Control) -> Iterator[Control]:
        if not control.visible:
            return
        if control.type in DIALOGS and control.get("open") is not True:
            return
        if control.type != COMPONENT:
            yield control
        if control.type in ("Dropdown", "DropdownM2") and control.id in self.open_menus:
            self.menus_seen.append(control)
        hidden = _HIDDEN.get(control.type, frozenset())
        if control.type == "ExpansionTile" and not (
            control.get("expanded") or control.get("initially_expanded")
        ):
            hidden = hidden | {"controls"}
        if control.type == "ExpansionPanel" and not control.get("expanded"):
            hidden = hidden | {"content"}
        children: list[tuple[int, Any]] = []
        for name, value in control.props.items():
            if name in hidden or name == "tooltip":
                continue
            if control.type == "TabBarView" and name == "controls" and isinstance(value, list):
                selected = _selected_tab(control)
                value = value[selected : selected + 1]
            if control.type == "SnackBar" and name == "action" and isinstance(value, str):
                continue
            children.append((_CHILD_ORDER.get(name, len(_CHILD_ORDER)), value))
        children.sort(key=lambda item: item[0])
        for _, value in children:
            yield from self.value(value)

    def value(self, value: Any) -> Iterator[Control]:
        if isinstance(value, Control):
            if value.type in DIALOGS:
                return  # a dialog shows from the page's dialogs, not where it sits
            yield from self.control(value)
        elif isinstance(value, list):
            for item in value:
                yield from self.value(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from self.value(item)

    def menus(self) -> Iterator[Control]:
        """The options of every open dropdown menu (those an editable one
        with ``enable_filter`` filters out by its text are not painted)."""
        for dropdown in self.menus_seen:
            for option in menu_options(dropdown):
                yield from self.control(option)


def menu_options(dropdown: Control) -> list[Control]:
    """The options an open dropdown menu lists now."""
    options = [
        o
        for o in _unwrapped(dropdown.props.get("options"))
        if isinstance(o, Control) and o.visible and option_label(o) is not None
    ]
    typed = dropdown.props.get("text")
    if dropdown.get("editable") and dropdown.get("enable_filter") and isinstance(typed, str):
        if typed != dropdown.selected_option():
            options = [o for o in options if typed.lower() in str(option_label(o)).lower()]
    return options


def option_label(option: Control) -> str | None:
    """A DropdownOption's painted label: its text, else its key."""
    text = option.props.get("text")
    if isinstance(text, str):
        return text
    key = option_key(option)
    return None if key is None else str(key)


def _selected_tab(view: Control) -> int:
    for ancestor in view.ancestors():
        if ancestor.type == "Tabs":
            return int(ancestor.get("selected_index", 0))
    return 0
