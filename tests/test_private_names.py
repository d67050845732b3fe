"""No module but ``quart_flet.compat`` touches a private name of another
package: reads it (``x._name``), names it in a string (``getattr(x,
"_name")``), overrides it (``def _name`` in a subclass of flet's or Quart's
class), imports it (``from x import _name``), swaps an object's
``__class__``, or reads a frame or coroutine's insides (``cr_frame``,
``f_locals``...). A private name is ours when some module of the package
(compat aside) defines it: a ``def``, a class attribute, ``self._x = ...``,
a ``__slots__`` entry.
"""

from __future__ import annotations

import ast
import importlib
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

import quart_flet

PACKAGE = Path(quart_flet.__file__).parent  # the installed package
COMPAT = PACKAGE / "compat"

#: a frame's or a coroutine's insides: compat.stdlib and compat.hypercorn read them
FRAME_NAMES = frozenset(
    {
        "f_locals",
        "f_back",
        "f_globals",
        "cr_frame",
        "cr_await",
        "cr_code",
        "gi_frame",
        "gi_yieldfrom",
        "ag_frame",
        "ag_await",
        "tb_frame",
        "_getframe",
        "currentframe",
    }
)
ATTRIBUTE_CALLS = frozenset(
    {"getattr", "setattr", "hasattr", "delattr", "__getattribute__", "__setattr__", "__delattr__"}
)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if COMPAT not in p.parents]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def own_names(tree: ast.AST) -> set[str]:
    """The names ``tree`` defines: functions, classes, assigned names,
    ``self._x``/``cls._x`` attributes, ``__slots__`` entries."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            found.add(node.attr)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            found |= {
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return found


def _is_ours(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return module.startswith("quart_flet.") and not module.startswith("quart_flet.compat")


def _foreign_names(cls: type) -> set[str]:
    """The names the classes ``cls`` inherits from other packages define."""
    return {name for base in cls.__mro__[1:] if not _is_ours(base) for name in vars(base)}


def _class_problems(
    node: ast.ClassDef, own_classes: set[str], namespace: dict[str, Any]
) -> list[str]:
    """(b) private methods of a foreign base overridden, or reached through
    ``self``/``cls``/``super()``."""
    cls = namespace.get(node.name)
    if isinstance(cls, type) and node.col_offset == 0:
        foreign = _foreign_names(cls)

        def inherited(name: str) -> bool:
            return name in foreign

    else:  # a class made inside a function: judged by its bases' names
        base_names = {
            b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
            for b in node.bases
        }
        unknown = bool(base_names - own_classes - {"object"})

        def inherited(name: str) -> bool:
            return unknown

    found = []
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_private(item.name):
            if inherited(item.name):
                found.append(f"{item.lineno}: overrides {node.name}.{item.name}")
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and is_private(sub.attr) and inherited(sub.attr):
            value = sub.value
            if (isinstance(value, ast.Name) and value.id in ("self", "cls")) or (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id == "super"
            ):
                found.append(f"{sub.lineno}: inherited {ast.unparse(sub)}")
    return found


def foreign_names() -> set[str]:
    """The private names compat reads or sets on objects not its own, or
    imports: foreign wherever they appear, even where we use the same name
    for our own (``self._lock`` is ours, ``services._lock`` flet's)."""
    found: set[str] = set()
    for path in COMPAT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and is_private(node.attr) and not _on_self(node):
                found.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                found |= {alias.name for alias in node.names if is_private(alias.name)}
    return found


def _on_self(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")


FOREIGN = foreign_names()


def private_uses(
    source: str,
    own: set[str],
    own_classes: set[str],
    namespace: dict[str, Any],
) -> list[str]:
    """What in ``source`` touches a private name of another package: one line
    per find, ``"<line>: <what>"``. ``own``: the package's own names;
    ``namespace``: the module's globals, to find what its classes inherit."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        # (a) an attribute: a private one not ours, or a frame's insides
        if isinstance(node, ast.Attribute):
            if node.attr in FRAME_NAMES:
                found.append(f"{line}: frame or coroutine insides .{node.attr}")
            elif is_private(node.attr) and (
                node.attr not in own or (node.attr in FOREIGN and not _on_self(node))
            ):
                found.append(f"{line}: foreign private attribute .{node.attr}")
            elif node.attr == "__class__" and isinstance(node.ctx, ast.Store):
                found.append(f"{line}: __class__ assigned")
        # (c) a private name (or a frame's insides) in a string given to getattr...
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called in ATTRIBUTE_CALLS:
                for arg in node.args[:2]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        name = arg.value
                        if (is_private(name) and name not in own) or name in FRAME_NAMES:
                            found.append(f"{line}: {called}(..., {name!r})")
                        elif name == "__class__" and called.strip("_") in ("setattr",):
                            found.append(f"{line}: __class__ set with {called}")
        # (e) a private module or name imported from another package
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "quart_flet":
                names = [*node.module.split("."), *(alias.name for alias in node.names)]
                found += [f"{line}: imports {name}" for name in names if is_private(name)]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "quart_flet":
                    found += [
                        f"{line}: imports {part}"
                        for part in alias.name.split(".")
                        if is_private(part)
                    ]
        # (b) overrides
        if isinstance(node, ast.ClassDef) and node.bases:
            found += _class_problems(node, own_classes, namespace)
    return sorted(set(found), key=lambda f: int(f.split(":")[0]))


def _package_names() -> tuple[set[str], set[str]]:
    own: set[str] = set()
    classes: set[str] = set()
    for path in _modules():
        tree = ast.parse(path.read_text())
        own |= own_names(tree)
        classes |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    return own, classes


OWN, OWN_CLASSES = _package_names()


@pytest.mark.parametrize("path", _modules(), ids=lambda p: module_name(p))
def test_no_module_but_compat_touches_a_private_foreign_name(path: Path) -> None:
    name = module_name(path)
    # importing __main__ would run the command: its classes are judged by name
    namespace: dict[str, Any] = {}
    if not name.endswith("__main__"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the old module names
            namespace = vars(importlib.import_module(name))
    found = private_uses(path.read_text(), OWN, OWN_CLASSES, namespace)
    assert not found, f"{module_name(path)}: move these into quart_flet.compat:\n" + "\n".join(
        found
    )


def _check(snippet: str) -> list[str]:
    source = textwrap.dedent(snippet)
    namespace: dict[str, Any] = {"__name__": "quart_flet.snippet"}
    exec(compile(source, "<snippet>", "exec"), namespace)
    own = OWN | own_names(ast.parse(source))
    tree = ast.parse(source)
    classes = OWN_CLASSES | {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    return private_uses(source, own, classes, namespace)


@pytest.mark.parametrize(
    ("snippet", "caught"),
    [
        # (a) a foreign object's private attribute
        ("import flet as ft\nft.Text('x')._i", "foreign private attribute ._i"),
        # (b) a foreign private method overridden, or called through self/super()
        (
            """
            from flet.controls.page import Page

            class P(Page):
                def _prepare_dialog(self, dialog):
                    pass
            """,
            "overrides P._prepare_dialog",
        ),
        (
            """
            from quart.asgi import ASGIHTTPConnection

            class C(ASGIHTTPConnection):
                def request(self, send):
                    return super()._create_request_from_scope(send)
            """,
            "inherited super()._create_request_from_scope",
        ),
        (
            """
            def make():
                from flet.controls.page import Page

                class P(Page):
                    def _helper(self):
                        pass
            """,
            "overrides P._helper",
        ),
        # (c) a private name in a string, and __class__ swapped
        ("def f(x):\n    getattr(x, '_authorize_callback')", "getattr(..., '_authorize_callback')"),
        # ... also a name we use for our own, when compat reads it off flet's objects
        ("def f(services):\n    services._lock = None", "foreign private attribute ._lock"),
        ("def f(x):\n    object.__setattr__(x, '_services', 1)", "__setattr__(..., '_services')"),
        ("class A:\n    pass\nA().__class__ = A", "__class__ assigned"),
        # (d) a frame's or a coroutine's insides
        ("import sys\nsys._getframe(0).f_locals", "frame or coroutine insides .f_locals"),
        ("import sys\nsys._getframe(0)", "frame or coroutine insides ._getframe"),
        ("getattr(object(), 'cr_frame', None)", "getattr(..., 'cr_frame')"),
        ("import inspect\ninspect.currentframe()", "frame or coroutine insides .currentframe"),
        # (e) a private module or name imported
        ("from asyncio.events import _get_running_loop", "imports _get_running_loop"),
        ("from hypercorn.__main__ import _load_config", "imports _load_config"),
        ("import concurrent.futures._base", "imports _base"),
    ],
)
def test_each_rule_can_fail(snippet: str, caught: str) -> None:
    found = _check(snippet)
    assert any(f.endswith(caught) for f in found), found


def test_what_is_ours_passes() -> None:
    assert not _check(
        """
        from flet.messaging.session import Session

        class Mine:
            __slots__ = ("_x",)

            def _helper(self):
                return self._x

        class S(Session):  # a new private helper on a flet subclass
            def _quart_flet_helper(self):
                return self._quart_flet_helper

        getattr(Mine(), "_helper")
        """
    )
