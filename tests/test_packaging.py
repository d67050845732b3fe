"""What users install: the suite runs against the installed wheel, which
holds the whole package, knows its version, and changes nothing
process-wide when imported."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import distribution, entry_points
from pathlib import Path

from conftest import ROOT

import quart_flet

SOURCE = ROOT / "src" / "quart_flet"
INSTALL_HINT = (
    "run the tests on the installed wheel: bash .ci/install && .venv/bin/python -m pytest"
)


def test_the_suite_imports_the_installed_package_not_the_checkout() -> None:
    installed = Path(quart_flet.__file__).resolve().parent
    assert not installed.is_relative_to(SOURCE.parent), f"{installed}: {INSTALL_HINT}"
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert installed.parent == purelib, f"{installed}: {INSTALL_HINT}"


def test_the_installed_wheel_holds_every_module_of_the_source() -> None:
    shipped = {str(file) for file in distribution("quart-flet").files or ()}
    source = {
        str(path.relative_to(SOURCE.parent))
        for path in SOURCE.rglob("*")
        if path.suffix == ".py" or path.name == "py.typed"
    }
    assert len(source) > 40
    missing = sorted(source - shipped)
    assert not missing, f"not in the installed wheel: {missing}; {INSTALL_HINT}"


def test_one_version_everywhere() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        declared = tomllib.load(file)["project"]["version"]
    assert quart_flet.__version__ == distribution("quart-flet").version == declared
    assert f"\n## {declared} - " in (ROOT / "CHANGELOG.md").read_text()
    assert (
        f"quart_flet-{declared}-py3-none-any.whl[redis,metrics]" in (ROOT / "README.md").read_text()
    )
    command = Path(sys.executable).parent / "quart-flet"
    result = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, f"quart-flet {declared}\n"), result.stderr


def test_pytest_finds_the_plugin_through_its_entry_point() -> None:
    (plugin,) = [entry for entry in entry_points(group="pytest11") if "quart_flet" in entry.value]
    assert plugin.load().__name__ == "quart_flet.testing.plugin"


# In a fresh interpreter outside the checkout: import every module, and report
# what process-wide state changed on the way.
PROBE = """
import asyncio, json, logging, pkgutil, signal, sys, warnings, importlib

def state():
    # a logger only named (getLogger) changes nothing; one given a level,
    # a handler or propagate=False changes what the program logs
    configured = {
        name: (logger.level, len(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
        and (logger.level or logger.handlers or not logger.propagate or logger.disabled)
    }
    return {
        "excepthook": repr(sys.excepthook),
        "unraisablehook": repr(sys.unraisablehook),
        "threading.excepthook": repr(__import__("threading").excepthook),
        "signals": {int(s): repr(signal.getsignal(s)) for s in signal.valid_signals()
                    if s not in (signal.SIGKILL, signal.SIGSTOP)},
        "warnings": repr(warnings.filters),
        "root logger": [logging.root.level, [repr(h) for h in logging.root.handlers]],
        "configured loggers": configured,
        "loop policy": type(asyncio.get_event_loop_policy()).__name__,
    }

# what the dependencies do when imported is theirs (flet sets a logger's level)
import flet, flet.messaging.session, flet_web, hypercorn, quart, msgpack
before = state()
import quart_flet
modules = [info.name for info in pkgutil.walk_packages(quart_flet.__path__, "quart_flet.")]
for name in modules:
    importlib.import_module(name)
after = state()
report = {"file": quart_flet.__file__, "modules": modules, "before": before, "after": after}
print(json.dumps(report))
"""


def test_every_module_imports_from_outside_the_checkout_and_changes_nothing(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not Path(report["file"]).resolve().is_relative_to(SOURCE.parent)
    expected = {
        ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in SOURCE.rglob("*.py")
    } - {"quart_flet"}
    assert set(report["modules"]) == expected
    changed = {key for key in report["before"] if report["before"][key] != report["after"][key]}
    assert not changed, {key: (report["before"][key], report["after"][key]) for key in changed}


def test_a_program_that_catches_a_bad_option_keeps_its_own_error_hook(tmp_path: Path) -> None:
    """Only an uncaught OptionError is printed as one line; the program's own
    errors still reach the hook it installed, before or after the bad option."""
    program = """
import sys
sys.excepthook = lambda kind, error, tb: print("own hook:", error, file=sys.stderr)
from quart_flet import OptionError, quart_app
try:
    quart_app(lambda page: None, max_threads="zero")
except OptionError as error:
    print("caught:", error)
raise RuntimeError("the program's own error")
"""
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stdout.startswith("caught: quart-flet option max_threads")
    assert result.stderr == "own hook: the program's own error\n", result.stderr
