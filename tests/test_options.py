"""Options as a Flet user arriving from flet.fastapi meets them: its names
either work here or say what to use instead; a typo gets a "did you mean";
Flet's documented variables that mean nothing here are named at start-up."""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import flet as ft
import pytest
from quart import Quart

from quart_flet import FletOptions, OptionError, flet_blueprint
from quart_flet.options import FASTAPI_OPTIONS, IGNORED_ENV_VARS, RENAMED, ignored_env_warnings


def main(page: ft.Page) -> None:
    page.add(ft.Text("hi"))


@pytest.mark.parametrize("name", sorted(FASTAPI_OPTIONS))
def test_a_fastapi_option_without_a_counterpart_says_what_to_use(name: str) -> None:
    with pytest.raises(OptionError, match=f"'{name}' is flet.fastapi's") as error:
        flet_blueprint(main, **{name: "/x"})
    assert any(hint in str(error.value) for hint in ("url_prefix", "_endpoint=", "not supported"))
    assert "\n" not in str(error.value)


def test_a_relative_websocket_endpoint_path_is_accepted_with_a_deprecation() -> None:
    with pytest.warns(DeprecationWarning, match="now called 'websocket_endpoint'"):
        blueprint = flet_blueprint(main, websocket_endpoint_path="socket")
    app = Quart(__name__)
    app.register_blueprint(blueprint)
    assert any(rule.rule == "/socket" for rule in app.url_map.iter_rules())


def test_an_absolute_websocket_endpoint_path_is_refused() -> None:
    with pytest.raises(OptionError, match="is absolute; use websocket_endpoint='ws'"):
        flet_blueprint(main, websocket_endpoint_path="/ws")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("web_rendere", "web_renderer"),
        ("sesion_timeout_seconds", "session_timeout_seconds"),
        ("max_thread", "max_threads"),
        ("uplaod_dir", "upload_dir"),
    ],
)
def test_a_typo_gets_a_did_you_mean(typo: str, meant: str) -> None:
    with pytest.raises(OptionError, match=f"did you mean '{meant}'"):
        flet_blueprint(main, **{typo: 1})


def test_a_name_like_no_other_points_to_the_list() -> None:
    with pytest.raises(OptionError, match="help\\(quart_flet.FletOptions\\)") as error:
        flet_blueprint(main, zzz=1)
    assert "max_threads" not in str(error.value)  # no wall of 24 names


def test_flets_variables_that_mean_nothing_here_are_named() -> None:
    assert ignored_env_warnings({}) == []
    lines = ignored_env_warnings(dict.fromkeys(IGNORED_ENV_VARS, "1"))
    assert [line.split()[0] for line in lines] == list(IGNORED_ENV_VARS)


async def test_they_are_warned_about_at_start_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FLET_SERVER_PORT", "8550")
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main))
    with caplog.at_level(logging.WARNING, logger="quart_flet"):
        async with app.test_app():
            pass
    (record,) = [r for r in caplog.records if "FLET_SERVER_PORT" in r.getMessage()]
    assert "--bind" in record.getMessage() and record.levelno == logging.WARNING


def test_the_options_are_documented_for_help() -> None:
    from quart_flet import FletOptions
    from quart_flet.options import option_docs

    text = FletOptions.__doc__ or ""
    for name, env, _, doc in option_docs():
        assert f"{name}{f' ({env})' if env else ''}, default" in text and doc in text, name


def test_the_readme_options_table_is_made_from_the_same_docs() -> None:
    from conftest import ROOT

    from quart_flet.options import options_table

    assert options_table() in (ROOT / "README.md").read_text()


@pytest.mark.server
def test_a_bad_option_under_hypercorn_is_one_line_and_a_failed_exit(tmp_path: Path) -> None:
    """As the README and the Procfile run it (--workers 0: Hypercorn 0.18's
    supervisor, used for --workers 1 and up, reports 0 for a worker that failed)."""
    (tmp_path / "badapp.py").write_text(
        "from quart_flet import quart_app\napp = quart_app(lambda page: None, max_threads='zero')\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "badapp:app",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: quart-flet option max_threads: 'zero' is not a whole number"], lines


def test_the_readme_migration_table_covers_flet_fastapi_app() -> None:
    """Every parameter of flet_web.fastapi.app (and FletStaticFiles') is in the
    README's table, and each works here or is refused with a hint."""
    import inspect

    from conftest import ROOT
    from flet_web.fastapi import app as fastapi_app
    from flet_web.fastapi.flet_static_files import FletStaticFiles

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Coming from flet.fastapi") : readme.index("## Troubleshooting")]
    names = set(inspect.signature(fastapi_app).parameters) - {"main"}
    names |= set(inspect.signature(FletStaticFiles.__init__).parameters) - {"self"}
    known = {f.name for f in fields(FletOptions)}
    for name in sorted(names):
        assert f"`{name}=" in table, name
        if name in known or name == "before_main":
            continue  # the same option here
        if name in RENAMED:
            with pytest.warns(DeprecationWarning, match=RENAMED[name]):
                flet_blueprint(main, **{name: "ws"})
        else:
            with pytest.raises(OptionError, match="is flet.fastapi's"):
                flet_blueprint(main, **{name: "/x"})


def test_the_reconnect_options_come_from_arguments_or_variables() -> None:
    from quart_flet.options import resolve_options

    defaults = resolve_options({})
    assert defaults.reconnect_notice_delay_seconds == 2
    assert defaults.reconnect_reload_seconds == 60
    assert defaults.reconnect_login_url is None
    env = {
        "FLET_RECONNECT_NOTICE": "",  # unset: the argument holds
        "FLET_RECONNECT_NOTICE_DELAY": "0.25",
        "FLET_RECONNECT_RELOAD": "0",
        "FLET_RECONNECT_LOGIN_URL": "https://id.example.com/login",
    }
    options = resolve_options(env, reconnect_notice="Hold on")
    assert options.reconnect_notice == "Hold on"
    assert options.reconnect_notice_delay_seconds == 0.25
    assert options.reconnect_reload_seconds == 0
    assert options.reconnect_login_url == "https://id.example.com/login"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("reconnect_notice_delay_seconds", -1, "below the minimum"),
        ("reconnect_reload_seconds", "soon", "is not a number"),
        ("reconnect_login_url", "login", "not a path like /login"),
        ("reconnect_login_url", "//evil.example.com/", "not a path like /login"),
        ("reconnect_login_url", "javascript:alert(1)", "not a path like /login"),
        ("reconnect_login_url", '/login"onload', "characters a URL does not"),
    ],
)
def test_bad_reconnect_options_are_refused(name: str, value: object, message: str) -> None:
    from quart_flet.options import resolve_options

    with pytest.raises(OptionError, match=f"option {name}: .*{message}"):
        resolve_options({}, **{name: value})
