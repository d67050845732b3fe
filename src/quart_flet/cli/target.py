"""Find the app a command names: ``app.py``, ``package/app.py``, ``module``,
``module:main`` or ``module:app``.

A file is imported as a module of its own directory (so its sibling imports
work, and its ``if __name__ == "__main__":`` block does not run). Without an
attribute, ``app`` is taken when the module has one, else ``main``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AppTarget", "TargetError", "parse_target"]


class TargetError(ValueError):
    """The command's app target cannot be found; the message says why."""


@dataclass(frozen=True)
class AppTarget:
    """Where an app lives: ``module`` importable once ``directory`` (when
    given) is first on sys.path, and the attribute to take (None: app, else main)."""

    text: str
    module: str
    attribute: str | None
    directory: Path | None

    def load(self, prefer_main: bool = False) -> Any:
        """Import the module and return the Quart app or the Flet ``main`` it
        names; without an attribute ``app``, else ``main`` (``main`` first when
        ``prefer_main``: a mount path was asked for)."""
        if self.directory is not None and str(self.directory) not in sys.path:
            sys.path.insert(0, str(self.directory))
        elif self.directory is None and "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` and hypercorn do
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as error:
            if error.name != self.module.split(".")[0] and error.name != self.module:
                raise  # the app itself imports something missing: its own traceback
            raise TargetError(f"cannot import {self.module!r} (from {self.text!r})") from None
        default = ["main", "app"] if prefer_main else ["app", "main"]
        names = [self.attribute] if self.attribute else default
        for name in names:
            found = getattr(module, name, None)
            if found is not None:
                return found
        wanted = " or ".join(repr(name) for name in names)
        raise TargetError(f"{self.module!r} has no {wanted} (from {self.text!r})")

    def watched_directory(self) -> Path:
        """The directory whose Python files are the app's: the file's own, or
        the top-level package's (the directory of a module outside any package)."""
        if self.directory is not None:
            return self.directory
        top = self.module.split(".")[0]
        spec = importlib.util.find_spec(top)
        if spec is None or spec.origin is None:
            if spec is not None and spec.submodule_search_locations:
                return Path(next(iter(spec.submodule_search_locations))).resolve()
            raise TargetError(f"cannot find {top!r} (from {self.text!r})")
        origin = Path(spec.origin).resolve()
        return origin.parent.parent if origin.name == "__init__.py" else origin.parent


def parse_target(text: str) -> AppTarget:
    """``app.py`` / ``dir/app.py[:attr]`` or ``module[:attr]``, checked for shape
    (importing waits for :meth:`AppTarget.load`)."""
    module, _, attribute = text.partition(":")
    if not module or (_ and not attribute.isidentifier()):
        raise TargetError(f"{text!r} is not app.py, module, module:main or module:app")
    if module.endswith(".py") or "/" in module or module.startswith("."):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise TargetError(f"no file {module!r}")
        if path.suffix != ".py":
            raise TargetError(f"{module!r} is not a Python file")
        return AppTarget(text, path.stem, attribute or None, path.parent)
    if not all(part.isidentifier() for part in module.split(".")):
        raise TargetError(f"{text!r} is not app.py, module, module:main or module:app")
    return AppTarget(text, module, attribute or None, None)
