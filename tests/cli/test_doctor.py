"""`quart-flet doctor`: one test per finding (it appears when the setting is
wrong, names the fix, and goes away once fixed), then the command itself:
Procfile and command-line parsing, exit status."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import flet as ft
import pytest
from conftest import ROOT, free_port
from hypercorn.config import Config
from quart import Quart
from runner import run_to_end
from test_redis import RedisServer, _redis_server  # noqa: F401  (the fixture)

from quart_flet import flet_blueprint, quart_app
from quart_flet.app.server import SAFE_SETTINGS
from quart_flet.cli.doctor import (
    Finding,
    RunConfig,
    add_doctor_parser,
    check,
    command_words,
    hypercorn_settings,
    parse_hypercorn_words,
    parse_run_words,
)


async def main(page: ft.Page) -> None:
    page.add(ft.Text("hi"))


def safe_config(**changes: Any) -> Config:
    """Hypercorn settings with nothing to complain about, then ``changes``."""
    config = Config()
    config.workers = 0
    for name, value in {**SAFE_SETTINGS, **changes}.items():
        setattr(config, name, value)
    return config


def doctor_args(*argv: str) -> argparse.Namespace:
    """What ``quart-flet doctor *argv`` parses."""
    parser = argparse.ArgumentParser()
    add_doctor_parser(parser.add_subparsers(dest="command_name"), "the app")
    return parser.parse_args(["doctor", *argv])


def findings(app: Quart, config: Config | None = None) -> list[Finding]:
    # the compressed client's cache is its own test below
    return [
        f for f in check(app, config or safe_config()) if "compressed web client" not in f.problem
    ]


def only(found: list[Finding], level: str, *words: str) -> Finding:
    assert len(found) == 1, found
    (finding,) = found
    assert finding.level == level, finding
    for word in words:
        assert word in str(finding), (word, str(finding))
    return finding


def test_a_good_deployment_has_no_findings() -> None:
    assert findings(quart_app(main)) == []


@pytest.mark.parametrize("option", ["upload_dir", "redis_url"])
def test_uploads_or_redis_without_a_secret_key(tmp_path: Path, option: str) -> None:
    value = str(tmp_path / "up") if option == "upload_dir" else "redis://127.0.0.1:1/0"
    found = [f for f in findings(quart_app(main, **{option: value})) if "secret key" in f.problem]
    only(found, "error", "no secret key", "refuses to start", "fix: set FLET_SECRET_KEY")
    fixed = quart_app(main, **{option: value})
    fixed.config["SECRET_KEY"] = "k"
    assert not [f for f in findings(fixed) if "secret key" in f.problem]


def test_redis_unreachable(redis_server: RedisServer) -> None:
    down = quart_app(main, redis_url=f"redis://:pw@127.0.0.1:{free_port()}/0", secret_key="k")
    finding = only(findings(down), "error", "is unreachable", "fix: start Redis there")
    assert "pw" not in str(finding)  # no password in the output
    up = quart_app(main, redis_url=redis_server.url, secret_key="k")
    assert findings(up) == []


def test_hypercorns_own_workers_are_a_warning_and_quart_flet_runs_are_not(
    redis_server: RedisServer,
) -> None:
    """Hypercorn's supervisor stops every worker when one dies and exits 0;
    quart-flet run's replaces the dead one. Pubsub, OAuth and reconnects
    cross the workers of one server without Redis (the relay, Linux)."""
    only(
        findings(quart_app(main), safe_config(workers=4)),
        "warning",
        "Hypercorn's --workers 4",
        "exits 0",
        "fix: quart-flet run module:app --workers 4",
    )
    shared = quart_app(main, redis_url=redis_server.url, secret_key="k")
    assert len(findings(shared, safe_config(workers=4))) == 1
    only(findings(quart_app(main), safe_config(workers=1)), "warning", "exits 0", "--workers 0")
    config, target = hypercorn_settings(
        doctor_args("--command", "quart-flet run app:app --workers 4 --port 8000")
    )
    assert isinstance(config, RunConfig) and (config.supervised, target) == (4, "app:app")
    assert findings(quart_app(main), config) == []


def test_no_ping_interval_or_read_timeout() -> None:
    app = quart_app(main)
    only(
        findings(app, safe_config(websocket_ping_interval=None)),
        "warning",
        "no WebSocket ping interval",
        "fix: --websocket-ping-interval 20",
    )
    only(
        findings(app, safe_config(read_timeout=None)),
        "warning",
        "no read timeout",
        "fix: --read-timeout 60",
    )
    only(
        findings(app, safe_config(read_timeout=10)),
        "error",
        "(10 s) is not above the ping interval (20 s)",
        "fix: --read-timeout 60",
    )


def test_a_small_backlog() -> None:
    only(
        findings(quart_app(main), safe_config(backlog=100)),
        "warning",
        "a backlog of 100",
        "fix: --backlog 2048",
    )


def test_the_compressed_client_cache_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small web client of our own (FLET_WEB_PATH, honoured by flet-web)
    and an empty cache: the finding; after a prebuild: none."""
    from quart_flet.client.compression import variant_store

    client = tmp_path / "web"
    client.mkdir()
    (client / "index.html").write_text("<html><head></head><body>" + "x" * 2000 + "</body></html>")
    (client / "main.dart.js").write_text("var a = 1;\n" * 500)
    monkeypatch.setenv("FLET_WEB_PATH", str(client))
    monkeypatch.setenv("QUART_FLET_CACHE_DIR", str(tmp_path / "cache"))
    app = quart_app(main)

    def cache_findings() -> list[Finding]:
        return [f for f in check(app, safe_config()) if "compressed web client" in f.problem]

    only(cache_findings(), "warning", "2 files missing", "fix: run quart-flet prebuild")
    variant_store(client).build()
    assert cache_findings() == []


def test_root_path_and_prefix_mismatch() -> None:
    app = Quart(__name__)
    app.register_blueprint(flet_blueprint(main), url_prefix="/sub")
    only(
        findings(app, safe_config(root_path="/sub")),
        "error",
        "the app is at /sub/sub/",
        "fix: mount it at /",
    )
    assert findings(app, safe_config(root_path="/proxy")) == []
    only(
        findings(quart_app(main), safe_config(root_path="sub")),
        "error",
        "does not start with '/'",
        "fix: --root-path /sub",
    )


def test_procfile_and_command_lines_are_read_as_hypercorn_reads_them() -> None:
    procfile = (ROOT / "Procfile").read_text().split("web:", 1)[1].splitlines()[0]
    assert parse_run_words(command_words(procfile)) == ("examples.counter:app", 2)
    assert parse_run_words(command_words("python -m quart_flet.cli run app.py")) == ("app.py", 0)
    assert parse_run_words(command_words("hypercorn app:app")) is None
    words = command_words(
        "hypercorn examples.counter:app --bind 0.0.0.0:$PORT --workers 0 --worker-class uvloop "
        "--backlog 2048 --websocket-ping-interval 20 --read-timeout 60 --access-logfile -"
    )
    flags, target, config = parse_hypercorn_words(words)
    assert target == "examples.counter:app" and config is None
    assert flags == {
        "workers": 0,
        "backlog": 2048,
        "websocket_ping_interval": 20.0,
        "read_timeout": 60,
    }
    flags, target, config = parse_hypercorn_words(
        command_words(
            "FLET_SECRET_KEY=x python -m hypercorn -k uvloop --access-logfile - "
            "--root-path=/sub -c my.toml pkg.mod:app -w 3"
        )
    )
    assert flags == {"root_path": "/sub", "workers": 3}
    assert (target, config) == ("pkg.mod:app", "my.toml")


def test_the_command_exits_non_zero_on_errors_only() -> None:
    doctor = ["-m", "quart_flet.cli", "doctor"]
    good = run_to_end([*doctor, "--procfile", "Procfile"])
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 error(s)" in good.stdout or "no problems found" in good.stdout

    warned = run_to_end([*doctor, "examples.counter:app", "--workers", "0"])
    assert warned.returncode == 0
    assert "warning: a backlog of 100" in warned.stdout and "fix: --backlog 2048" in warned.stdout
    strict = run_to_end([*doctor, "examples.counter:app", "--workers", "0", "--strict"])
    assert strict.returncode == 1

    broken = run_to_end([*doctor, "-c", "examples/hypercorn.toml", "examples/upload.py"])
    assert broken.returncode == 1
    assert broken.stdout.startswith("error: the Flet app 'flet' (at /) uses uploads")
    assert "1 error(s)" in broken.stdout


def test_flet_server_variables_under_hypercorn_are_a_warning() -> None:
    command = "hypercorn examples.counter:app --workers 0 --backlog 2048"
    result = run_to_end(
        ["-m", "quart_flet.cli", "doctor", "--command", command], {"FLET_SERVER_PORT": "9000"}
    )
    assert "warning: FLET_SERVER_PORT is set, but Hypercorn does not read it" in result.stdout


def test_the_readmes_doctor_command_says_what_it_shows() -> None:
    readme = (ROOT / "README.md").read_text()
    line = next(
        line for line in readme.splitlines() if line.startswith(".venv/bin/quart-flet doctor")
    )
    typed, shown = (part.strip() for part in line.split("#", 1))
    args = typed.removeprefix(".venv/bin/quart-flet").split()
    result = run_to_end(["-m", "quart_flet.cli", *args])
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1] == shown
