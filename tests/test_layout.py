"""The package's layout: which folder may import which.

Each folder's ``__init__`` says its job and what it may import; this test
holds the code to it. The rooms, bottom to top:

- the root modules (options, errors, stats, types, and mount: one Flet app
  at one place, which every room works on) import no folder; ``compat/``
  (every private name of flet, Quart, Hypercorn, asyncio) counts as root,
  and its modules import nothing of quart_flet;
- ``runtime/`` (flet's side: event turns, the pool threads, the loop-safe
  session, pubsub) imports only the root, and never Quart or Hypercorn, not
  even through the quart_flet modules it imports;
- ``client/`` (the web client's files), ``asgi/`` (patches to Quart's and
  Hypercorn's classes) and ``http/`` (uploads, response headers) import only
  the root;
- ``backends/`` imports the root and ``runtime/``;
- ``session/`` (one WebSocket and its Flet session) imports the rooms below;
- ``app/`` (the extension, the blueprint, probes, metrics) imports every room
  below it;
- ``cli/`` and ``testing/`` sit on top: nothing imports them.

Imports are read wherever they are: at the top, under TYPE_CHECKING, inside
a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import quart_flet

PACKAGE = Path(quart_flet.__file__).parent  # the installed package

ROOT_MODULES = {"options", "errors", "stats", "compat", "types", "mount"}  # compat/: a folder

#: room -> the rooms it may import (its own room always)
MAY_IMPORT: dict[str, set[str]] = {
    "root": set(),
    "runtime": {"root"},
    "client": {"root"},
    "asgi": {"root"},
    "http": {"root"},
    "backends": {"root", "runtime"},
    "session": {"root", "runtime", "client", "asgi", "http", "backends"},
    "app": {"root", "runtime", "client", "asgi", "backends", "session", "http"},
    "cli": {"root", "runtime", "client", "asgi", "backends", "session", "http", "app"},
    "testing": {"root", "runtime", "client", "asgi", "backends", "session", "http", "app"},
    # the public face hands on names of every room but the top two
    "face": {"root", "runtime", "client", "asgi", "backends", "session", "http", "app"},
    # a module's old name: it warns (and hands on the new module's names,
    # but for the pytest plugin, which loads by itself)
    "alias": {"app", "cli"},
}

#: old names of moved modules that users named (deprecated, warn on import)
DEPRECATED_ALIASES = {"quart_flet.pytest_plugin", "quart_flet.prebuild", "quart_flet.metrics"}

#: what runtime/ must never import, even through a root module
NOT_IN_RUNTIME = ("quart", "hypercorn", "werkzeug")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    if module == "quart_flet":
        return "face"
    if parts[1] == "compat":
        return "root"
    if module in DEPRECATED_ALIASES:
        return "alias"
    if len(parts) == 2 and parts[1] not in MAY_IMPORT:
        assert parts[1] in ROOT_MODULES, f"{module}: a new root module (say why, or use a folder)"
        return "root"
    assert parts[1] in MAY_IMPORT, f"{module}: a folder the layout does not know"
    return parts[1]


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                sub = PACKAGE.parent / Path(*candidate.split("."))
                is_module = sub.with_suffix(".py").exists() or sub.is_dir()
                found.add(candidate if is_module else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add(f"<relative import, level {node.level}>")
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def test_every_folder_says_its_job_and_what_it_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init.parent.name}/__init__.py: say its job and imports"


def test_imports_flow_down_the_rooms() -> None:
    broken = []
    for module, targets in graph().items():
        room = room_of(module)
        for target in targets:
            assert not target.startswith("<relative"), f"{module}: {target}"
            if target != "quart_flet" and not target.startswith("quart_flet."):
                continue
            assert target != "quart_flet" or room == "face", f"{module} imports the package face"
            other = room_of(target)
            if other != room and other not in MAY_IMPORT[room]:
                broken.append(f"{module} ({room}/) -> {target} ({other})")
    assert not broken, "\n".join(sorted(broken))


def test_compat_imports_nothing_of_the_package() -> None:
    for module, targets in graph().items():
        if module.startswith("quart_flet.compat"):
            ours = {t for t in targets if t.split(".")[0] == "quart_flet"}
            assert not ours, f"{module} imports {ours}"


def reached_from(module: str, edges: dict[str, set[str]]) -> dict[str, list[str]]:
    """The modules ``module`` imports, directly or through quart_flet
    modules, each with the chain that reaches it."""
    chains: dict[str, list[str]] = {}
    todo = [(module, [module])]
    while todo:
        current, chain = todo.pop()
        for target in sorted(edges.get(current, ())):
            if target not in chains:
                chains[target] = [*chain, target]
                if target in edges:
                    todo.append((target, chains[target]))
    return chains


def test_runtime_knows_no_quart_or_hypercorn() -> None:
    """Not even through a root module: ``runtime`` may import
    ``compat.flet``, not ``compat.quart``."""
    edges = graph()
    for module in edges:
        if room_of(module) == "runtime":
            for target, chain in reached_from(module, edges).items():
                assert target.split(".")[0] not in NOT_IN_RUNTIME, " -> ".join(chain)


def test_the_package_imports_form_no_cycle() -> None:
    edges = {
        module: {t for t in targets if t.startswith("quart_flet.")}
        for module, targets in graph().items()
    }
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if target not in edges:
                continue
            assert state.get(target) != 1, " -> ".join([*path, target])
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_rules_can_fail() -> None:
    """A room importing one above it is caught (the check is not vacuous)."""
    assert "app" not in MAY_IMPORT["session"]
    assert room_of("quart_flet.app.extension") == "app"
    assert room_of("quart_flet.session.registry") == "session"
    assert room_of("quart_flet.options") == "root"
    assert room_of("quart_flet.compat.quart") == "root"
    edges = {
        "quart_flet.runtime.x": {"quart_flet.compat.quart"},
        "quart_flet.compat.quart": {"quart"},
    }
    assert reached_from("quart_flet.runtime.x", edges)["quart"] == [
        "quart_flet.runtime.x",
        "quart_flet.compat.quart",
        "quart",
    ]


def test_old_module_names_warn_and_still_work() -> None:
    import importlib
    import sys
    import warnings

    for name in sorted(DEPRECATED_ALIASES):
        sys.modules.pop(name, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(name)
        assert any(issubclass(w.category, DeprecationWarning) for w in caught), name
        assert module.__doc__ and "Deprecated" in module.__doc__
    from quart_flet.app.metrics import FletCollector

    assert importlib.import_module("quart_flet.metrics").FletCollector is FletCollector


def test_the_old_name_of_quart_app_warns_and_still_works() -> None:
    import pytest
    from quart import Quart

    with pytest.warns(DeprecationWarning, match=r"quart_app\(\)"):
        app = quart_flet.flet_app(lambda page: None)
    assert isinstance(app, Quart)
    websockets = [rule.endpoint for rule in app.url_map.iter_rules() if rule.websocket]
    assert websockets == ["flet.websocket"]
