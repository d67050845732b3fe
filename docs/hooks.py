"""mkdocs hooks: the pages' generated parts, made from the code at build time.

A page asks for one with a marker on a line of its own:

- ``<!-- quart-flet:options -->``: every field of ``quart_flet.options.FletOptions``,
  with its environment variable, default and doc (the same docs as
  ``help(FletOptions)`` and the README's table);
- ``<!-- quart-flet:cli NAME -->``: the ``--help`` of ``quart-flet NAME``
  (``quart-flet`` alone for ``-``), from the installed console script.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import fields
from importlib.metadata import entry_points
from typing import Any

MARKER = re.compile(r"^<!-- quart-flet:(options|cli) ?(\S*) -->$", flags=re.M)


def _default(option: Any) -> str:
    shown = option.metadata.get("default")
    if shown is not None:
        return str(shown)
    value = option.default
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{value}`"
    if hasattr(value, "value"):  # flet's enums
        return f"`{value.value}`"
    return f"{value:g}" if isinstance(value, float) else str(value)


def options_reference() -> str:
    """A summary table, then one section per option (each with its own anchor)."""
    from quart_flet.options import ENV_VARS, FletOptions

    options = fields(FletOptions)
    rows = ["| option | environment variable | default |", "| --- | --- | --- |"]
    sections = []
    for option in options:
        env = ENV_VARS.get(option.name, "")
        rows.append(
            f"| [`{option.name}`](#{option.name}) | {f'`{env}`' if env else ''} "
            f"| {_default(option)} |"
        )
        sections.append(
            f"### `{option.name}` {{#{option.name}}}\n\n"
            f"{option.metadata['doc'][0].upper()}{option.metadata['doc'][1:]}.\n\n"
            f"- type: `{option.type}`\n"
            f"- default: {_default(option)}\n"
            f"- environment variable: {f'`{env}`' if env else 'none (an argument only)'}\n"
        )
    return "\n".join(rows) + "\n\n" + "\n".join(sections)


def cli_help(command: str) -> str:
    """``quart-flet [command] --help`` as the installed script prints it."""
    (script,) = entry_points(group="console_scripts", name="quart-flet")
    main = script.load()
    argv = ["--help"] if command == "-" else [command, "--help"]
    out = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(argv)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "```text\n" + out.getvalue().rstrip() + "\n```\n"


def on_page_markdown(markdown: str, **_: Any) -> str:
    def generated(match: re.Match[str]) -> str:
        if match.group(1) == "options":
            return options_reference()
        return cli_help(match.group(2) or "-")

    return MARKER.sub(generated, markdown)
