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

# Properties whose string value is painted as text.
_TEXT_PROPS = (
    "value",
    "text",
    "label",
    "content",
    "title",
    "subtitle",
    "hint_text",
    "helper_text",
    "error_text",
    "prefix_text",
    "suffix_text",
    "counter_text",
    "placeholder_text",
    "header",
    "leading",
    "trailing",
    "semantics_label",
)
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
            selected = self.selected_option()
            if selected is not None:
                found.append(selected)
            for name in ("label", "hint_text", "helper_text", "error_text"):
                value = self.props.get(name)
                if isinstance(value, str) and value and not (name == "hint_text" and selected):
                    found.append(value)
            return found
        for name in _TEXT_PROPS:
            if name == "value" and self.type not in _VALUE_IS_TEXT or self.type == "Text":
                continue
            value = self.props.get(name)
            if name == "hint_text" and self.type in _INPUTS and self.props.get("value"):
                continue  # a hint shows only in an empty field
            if _as_text(value):
                found.append(_as_text(value))
        return found

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
        return [v for v in self.page.props.get("views") or [] if isinstance(v, Control)]

    def top_view(self) -> Control | None:
        views = self.views()
        return views[-1] if views else None

    def open_dialogs(self) -> list[Control]:
        dialogs = self.page.props.get("_dialogs")
        found: list[Control] = []
        if isinstance(dialogs, Control):
            for dialog in dialogs.props.get("controls") or []:
                if isinstance(dialog, Control) and dialog.get("open") is True:
                    found.append(dialog)
        return found

    def on_screen(self, open_drawers: frozenset[int] = frozenset()) -> Iterator[Control]:
        """Every control a browser paints now, in paint order: the top view,
        the page's overlay, then open dialogs."""
        view = self.top_view()
        if view is not None:
            yield from self._walk(view, open_drawers)
            for name in ("drawer", "end_drawer"):
                drawer = view.props.get(name)
                if isinstance(drawer, Control) and drawer.id in open_drawers:
                    yield from self._walk(drawer, open_drawers)
        overlay = self.page.props.get("_overlay")
        if isinstance(overlay, Control):
            yield from self._walk(overlay, open_drawers)
        for dialog in self.open_dialogs():
            yield from self._walk(dialog, open_drawers)

    def _walk(self, control: Control, open_drawers: frozenset[int]) -> Iterator[Control]:
        if not control.visible:
            return
        if control.type in DIALOGS and control.get("open") is not True:
            return
        if control.type != COMPONENT:
            yield control
        hidden = _HIDDEN.get(control.type, frozenset())
        if control.type == "ExpansionTile" and not (
            control.get("expanded") or control.get("initially_expanded")
        ):
            hidden = hidden | {"controls"}
        children: list[Any] = []
        for name, value in control.props.items():
            if name in hidden or name == "tooltip":
                continue
            if control.type == "TabBarView" and name == "controls" and isinstance(value, list):
                selected = _selected_tab(control)
                value = value[selected : selected + 1]
            children.append(value)
        for value in children:
            yield from self._walk_value(value, open_drawers)

    def _walk_value(self, value: Any, open_drawers: frozenset[int]) -> Iterator[Control]:
        if isinstance(value, Control):
            if value.type in DIALOGS:
                return  # a dialog shows from the page's dialogs, not where it sits
            yield from self._walk(value, open_drawers)
        elif isinstance(value, list):
            for item in value:
                yield from self._walk_value(item, open_drawers)
        elif isinstance(value, dict):
            for item in value.values():
                yield from self._walk_value(item, open_drawers)


def _selected_tab(view: Control) -> int:
    for ancestor in view.ancestors():
        if ancestor.type == "Tabs":
            return int(ancestor.get("selected_index", 0))
    return 0
