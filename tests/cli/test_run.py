"""``python app.py`` with ``quart_flet.run(main)``, and ``quart-flet run``: a
real process serves on Flet's FLET_SERVER_* variables, prints its URL, counts,
and stops cleanly on Ctrl-C; a bad value is one line naming the variable."""

from __future__ import annotations

import re
import shlex
import socket
import tomllib
import urllib.request
from pathlib import Path

import pytest
from conftest import (
    REGISTER_CLIENT,
    ROOT,
    FletTestClient,
    WebsocketsSocket,
    free_port,
    register_frame,
)
from runner import command, run_to_end
from websockets.asyncio.client import connect

from quart_flet.app.server import SAFE_SETTINGS, ServerOptions, resolve_server_options
from quart_flet.options import OptionError


async def count_over_websocket(ws_url: str) -> None:
    async with connect(ws_url) as ws:
        client = FletTestClient(WebsocketsSocket(ws))
        await ws.send(register_frame())
        await client.receive_until(lambda m: m[0] == REGISTER_CLIENT)
        await client.patch_with("Counter:")  # main ran and rendered


def test_server_options_default_to_flets() -> None:
    assert resolve_server_options({}) == ServerOptions("127.0.0.1", 8000, "/")


def test_flet_variables_override_the_arguments() -> None:
    env = {"FLET_SERVER_PORT": "9001", "FLET_SERVER_IP": "*", "FLET_WEB_APP_PATH": "my-app/"}
    server = resolve_server_options(env, host="127.0.0.1", port=8001, path="/other")
    assert server == ServerOptions("0.0.0.0", 9001, "/my-app")
    assert server.url() == "http://127.0.0.1:9001/my-app/"
    assert resolve_server_options({}, host="::", port=1).url() == "http://[::1]:1/"
    assert resolve_server_options({}, host="::").bind == "[::]:8000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLET_SERVER_PORT": "abc"}, "port (from FLET_SERVER_PORT): 'abc' is not a whole number"),
        ({"FLET_SERVER_PORT": "70000"}, "port (from FLET_SERVER_PORT): '70000' is above"),
        ({"FLET_SERVER_PORT": "-1"}, "port (from FLET_SERVER_PORT): '-1' is below the minimum"),
        ({"FLET_SERVER_IP": "a b"}, "host (from FLET_SERVER_IP): 'a b' is not an IP"),
        ({"FLET_WEB_APP_PATH": "a?b"}, "path (from FLET_WEB_APP_PATH): 'a?b' is not a URL path"),
    ],
)
def test_a_bad_variable_is_an_error_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)):
        resolve_server_options(env)


def test_the_safe_settings_are_the_procfiles_and_the_tomls() -> None:
    """One set of safe Hypercorn settings: quart-flet run (the Procfile's
    command) and run() use what examples/hypercorn.toml recommends."""
    toml = tomllib.loads((ROOT / "examples/hypercorn.toml").read_text())
    procfile = (ROOT / "Procfile").read_text().split("web:", 1)[1].split("\n")[0]
    assert shlex.split(procfile)[:2] == ["quart-flet", "run"]
    for name, value in SAFE_SETTINGS.items():
        assert toml[name] == value, name


@pytest.mark.server
async def test_python_counter_py_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`python examples/counter.py` as in Flet: FLET_SERVER_PORT picks the
    port; the URL is printed; Ctrl-C stops it with status 0 and a clean log."""
    port = free_port()
    with command(["examples/counter.py"], tmp_path, {"FLET_SERVER_PORT": str(port)}) as app:
        url = app.url()
        assert url == f"http://127.0.0.1:{port}/"
        index = urllib.request.urlopen(url, timeout=10).read()
        assert b'<base href="/">' in index
        await count_over_websocket(f"ws://127.0.0.1:{port}/ws")
        assert app.interrupt() == 0
        assert app.rest_of_stdout().rstrip().endswith("quart-flet: stopped")
    assert "Traceback" not in app.stderr(), app.stderr()
    # honoured here, so not called "not used" at start-up
    assert "FLET_SERVER_PORT is set but not used" not in app.stderr()


@pytest.mark.server
def test_python_app_py_mounts_main_at_flet_web_app_path(tmp_path: Path) -> None:
    port = free_port()
    env = {"FLET_SERVER_PORT": str(port), "FLET_WEB_APP_PATH": "counter"}
    with command(["examples/counter.py"], tmp_path, env) as app:
        url = app.url()
        assert url == f"http://127.0.0.1:{port}/counter/"
        index = urllib.request.urlopen(url, timeout=10).read()
        assert b'<base href="/counter/">' in index
        assert b'flet.webSocketEndpoint="/counter/ws"' in index


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"FLET_SERVER_PORT": "eighty"},
            "error: quart-flet option port (from FLET_SERVER_PORT): 'eighty' is not a whole number",
        ),
        (
            {"FLET_MAX_THREADS": "zero"},
            "error: quart-flet option max_threads (from FLET_MAX_THREADS): 'zero' is not a "
            "whole number",
        ),
    ],
)
def test_python_app_py_with_a_bad_value_says_so_in_one_line(env: dict[str, str], line: str) -> None:
    result = run_to_end(["examples/counter.py"], env)
    assert result.returncode != 0
    assert result.stderr.strip() == line


def test_a_port_in_use_is_one_line_naming_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_end(["examples/counter.py"], {"FLET_SERVER_PORT": str(port)})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "choose another port with FLET_SERVER_PORT (or --port)"
    )


@pytest.mark.server
async def test_quart_flet_run_a_module_main_with_flags(tmp_path: Path) -> None:
    """`quart-flet run module:main --path`: the flags win over the variables,
    as `flet run --port` does."""
    port = free_port()
    args = ["-m", "quart_flet.cli", "run", "examples.counter:main", "--port", str(port)]
    env = {"FLET_SERVER_PORT": "1", "FLET_WEB_APP_PATH": "ignored"}
    with command([*args, "--path", "/c/"], tmp_path, env) as app:
        assert app.url() == f"http://127.0.0.1:{port}/c/"
        await count_over_websocket(f"ws://127.0.0.1:{port}/c/ws")
        assert app.interrupt() == 0
    assert "Traceback" not in app.stderr(), app.stderr()


@pytest.mark.server
def test_quart_flet_run_serves_a_quart_app_from_a_file(tmp_path: Path) -> None:
    port = free_port()
    args = ["-m", "quart_flet.cli", "run", "examples/existing_quart_app.py", "--port", str(port)]
    with command(args, tmp_path) as app:
        url = app.url()
        hello = urllib.request.urlopen(url + "api/hello", timeout=10).read()
        assert b"hello from Quart" in hello
        index = urllib.request.urlopen(url + "flet-app/", timeout=10).read()
        assert b'<base href="/flet-app/">' in index


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["nosuchfile.py"], "error: no file 'nosuchfile.py'"),
        (
            ["no_such_module:app"],
            "error: cannot import 'no_such_module' (from 'no_such_module:app')",
        ),
        (["examples.counter:nothing"], "error: 'examples.counter' has no 'nothing'"),
        (
            ["examples.counter:app", "--path", "/x"],
            "error: quart-flet option path: '/x' mounts a Flet main; a Quart app has its own "
            "url_prefix (unset FLET_WEB_APP_PATH / --path)",
        ),
        (["examples.counter", "--port", "x"], "error: quart-flet option port: 'x' is not"),
    ],
)
def test_quart_flet_run_with_a_bad_target_or_flag_says_why(args: list[str], line: str) -> None:
    result = run_to_end(["-m", "quart_flet.cli", "run", *args])
    assert result.returncode == 2
    assert result.stderr.strip().startswith(line), result.stderr


def test_quart_flet_prebuild_is_the_prebuild_command() -> None:
    result = run_to_end(["-m", "quart_flet.cli", "prebuild", "--help"])
    assert result.returncode == 0
    assert result.stdout.startswith("usage: quart-flet prebuild")
    assert "--cache-dir" in result.stdout


@pytest.mark.server
async def test_the_readmes_python_app_py_serves(tmp_path: Path) -> None:
    """The README's `python app.py` block, saved as app.py and run as typed."""
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if ".run(main)" in b)
    (tmp_path / "app.py").write_text(block)
    port = free_port()
    with command(["app.py"], tmp_path, {"FLET_SERVER_PORT": str(port)}, cwd=tmp_path) as app:
        assert app.url() == f"http://127.0.0.1:{port}/"
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            client = FletTestClient(WebsocketsSocket(ws))
            await ws.send(register_frame())
            await client.patch_with("Hello from python app.py")
        assert app.interrupt() == 0
