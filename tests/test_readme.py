"""The README is the front door: its commands and example must stay true."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, FletTestClient, find_controls, free_port, shell_server

README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    test_block = next(block for block in code_blocks("bash") if "pytest" in block)
    command = test_block.strip().splitlines()[-1].split("&&")[-1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
    assert "bash .ci/install" in ci_lines


def test_readme_set_up_uses_a_virtual_environment() -> None:
    """Debian's python3 refuses a system-wide pip install (PEP 668): the
    README's commands and .ci/install work in .venv, made the same way."""
    serve_block = next(block for block in code_blocks("bash") if "hypercorn" in block)
    steps = [step.strip() for step in serve_block.strip().splitlines()[-1].split("&&")]
    assert steps[0] == "python3 -m venv .venv"
    assert all(step.startswith(".venv/bin/") for step in steps[1:])
    install = (ROOT / ".ci" / "install").read_text()
    assert '"$PYTHON" -m venv .venv' in install and 'PYTHON="${PYTHON:-python3}"' in install
    assert "python3-venv" in install and "python3-venv" in README


def test_readme_serve_command_names_an_existing_app() -> None:
    serve_block = next(block for block in code_blocks("bash") if "hypercorn" in block)
    module = re.search(r"hypercorn (\S+):app", serve_block)
    assert module is not None
    assert (ROOT / (module.group(1).replace(".", "/") + ".py")).is_file()
    assert "127.0.0.1:8000" in serve_block


async def test_readme_example_serves_its_flet_app() -> None:
    namespace: dict[str, object] = {"__name__": "quart_app"}
    exec(compile(code_blocks("python")[0], "README.md", "exec"), namespace)
    app = namespace["app"]
    async with app.test_app() as test_app:  # type: ignore[attr-defined]
        client = test_app.test_client()
        index = await client.get("/flet-app/")
        assert index.status_code == 200
        assert '<base href="/flet-app/">' in await index.get_data(as_text=True)
        async with client.websocket("/flet-app/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            patch = await flet.receive_until(lambda m: m[0] == 2)
            assert find_controls(patch, _c="Text", value="Hello from Flet on Quart")


@pytest.mark.parametrize("path", ["Procfile", "pyproject.toml", ".ci/run", ".ci/install"])
def test_top_level_files_exist(path: str) -> None:
    assert (Path(ROOT) / path).is_file()


def test_readme_nginx_recipe_matches_the_tested_config() -> None:
    from test_sticky import NGINX_CONF, STICKY

    upstream = next(block for block in code_blocks("nginx") if "upstream flet" in block)
    tested = NGINX_CONF + STICKY
    for line in upstream.splitlines():
        line = line.split("#")[0].strip()
        if line.startswith(("hash ", "proxy_pass", "proxy_http_version", "proxy_set_header U")):
            assert line in tested, line
        if line.startswith("proxy_set_header Host"):
            assert line in tested, line


@pytest.mark.server
def test_readme_serve_command_serves_the_counter(tmp_path: Path) -> None:
    """The README's serve command as typed (after its install step), on a free port."""
    import urllib.request

    serve_block = next(block for block in code_blocks("bash") if "hypercorn" in block)
    command = serve_block.strip().splitlines()[-1].split("&&")[-1].strip()
    assert command.startswith(".venv/bin/python -m hypercorn") and "127.0.0.1:8000" in command
    port = free_port()
    with shell_server(command.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), port, tmp_path, {}):
        index = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
    assert b'<base href="/">' in index and b'flet.webSocketEndpoint="/ws"' in index


def test_readme_installs_extras_from_the_checkout() -> None:
    """quart-flet is not on an index: `pip install "quart-flet[h3]"` fails
    outside a checkout; extras install with -e from it, and they exist."""
    import tomllib

    assert 'install "quart-flet[' not in README
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in re.findall(r'pip install -e "\.\[(\w+)\]"', README):
        assert extra in extras, extra
    assert "[uvloop]" not in (ROOT / "examples" / "hypercorn.toml").read_text()


async def test_readme_handshake_example_greets_the_signed_in_user() -> None:
    from quart_auth import authenticated_client

    block = next(b for b in code_blocks("python") if "handshake(page)" in b)
    namespace: dict[str, object] = {"__name__": "quart_app"}
    exec(compile(block, "README.md", "exec"), namespace)
    app = namespace["app"]
    async with app.test_app() as test_app:  # type: ignore[attr-defined]
        client = test_app.test_client()
        for user, text in ((None, "Hello, stranger"), ("ada", "Hello, ada")):
            async with contextlib.AsyncExitStack() as stack:
                if user is not None:
                    await stack.enter_async_context(authenticated_client(client, user))
                ws = await stack.enter_async_context(client.websocket("/flet-app/ws"))
                flet = FletTestClient(ws)
                await flet.register()
                patch = await flet.receive_until(lambda m: m[0] == 2)
                assert find_controls(patch, _c="Text", value=text)


async def _login_guard_holds(app: Any, socket: str) -> None:
    """Signed out: the page redirects to the login form and the WebSocket at
    ``socket`` is refused with 401, no session made; signed in, main greets."""
    from quart.testing import WebsocketResponseError
    from quart_auth import authenticated_client

    registry = app.extensions["quart_flet"]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        page = await client.get("/members/")
        assert page.status_code == 302 and page.headers["Location"] == "/login?next=/members/"
        with pytest.raises(WebsocketResponseError) as refused:
            async with client.websocket(socket):
                pass
        assert refused.value.response.status_code == 401
        assert not registry.sessions
        async with authenticated_client(client, "ada"):
            assert (await client.get("/members/")).status_code == 200
            async with client.websocket(socket) as ws:
                flet = FletTestClient(ws)
                await flet.register()
                patch = await flet.receive_until(lambda m: m[0] == 2)
                assert find_controls(patch, _c="Text", value="Hello, ada")


async def test_readme_login_recipe_guards_the_page_and_the_socket() -> None:
    first = next(b for b in code_blocks("python") if "handshake(page)" in b)
    guard = next(b for b in code_blocks("python") if "before_websocket" in b)
    namespace: dict[str, object] = {"__name__": "quart_app"}
    exec(compile(first + guard, "README.md", "exec"), namespace)
    await _login_guard_holds(namespace["app"], "/members/ws")


def _run_block(marker: str, prefix: str = "") -> dict[str, object]:
    block = next(b for b in code_blocks("python") if marker in b)
    namespace: dict[str, object] = {"__name__": "quart_app"}
    exec(compile(prefix + block, "README.md", "exec"), namespace)
    return namespace


async def test_readme_own_routes_snippet_serves_its_flet_app() -> None:
    app = _run_block("hello.static_files(path)")["app"]
    async with app.test_app() as test_app:  # type: ignore[attr-defined]
        client = test_app.test_client()
        index = await client.get("/hello/")
        html = await index.get_data(as_text=True)
        assert index.status_code == 200 and 'flet.webSocketEndpoint="/sockets/hello"' in html
        async with client.websocket("/sockets/hello") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            patch = await flet.receive_until(lambda m: m[0] == 2)
            assert find_controls(patch, _c="Text", value="Hello from my own routes")


async def test_readme_session_hooks_snippet_counts_live_sessions() -> None:
    namespace = _run_block("on_session_end=ended")
    app, live = namespace["app"], namespace["live"]
    async with app.test_app() as test_app:  # type: ignore[attr-defined]
        async with test_app.test_client().websocket("/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            patch = await flet.receive_until(lambda m: m[0] == 2)
            assert find_controls(patch, _c="Text", value="1 sessions live")
            assert live == {flet.session_id}
    assert live == set()  # the server stopped: the session ended


async def test_readme_login_required_recipe_on_own_routes() -> None:
    first = next(b for b in code_blocks("python") if "handshake(page)" in b)
    namespace = _run_block("@login_required", prefix=first)
    await _login_guard_holds(namespace["app"], "/members/socket")


def test_readme_testing_snippet_passes(tmp_path: Path) -> None:
    """The "Testing your app" snippet, saved as a newcomer would save it,
    passes under pytest with the plugin (loaded here with -p: the checkout
    is not installed, so its pytest11 entry point is not either)."""
    import subprocess
    import sys

    section = README.split("## Testing your app", 1)[1]
    snippet = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    (tmp_path / "test_counter.py").write_text(snippet)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "quart_flet.testing.plugin",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_counter.py"),
        ],
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.server
async def test_readme_kubernetes_probes_and_scrape_answer(hypercorn: Any) -> None:
    """The Deployment's own command and env, served for real: each probe
    path answers 200 on its port, the scrape path parses as Prometheus text,
    and the readiness block in Python is the one the routes serve."""
    import httpx
    import yaml
    from prometheus_client.parser import text_string_to_metric_families

    manifests = [yaml.safe_load(block) for block in code_blocks("yaml")]
    deployment = next(m for m in manifests if m.get("kind") == "Deployment")
    scrape = next(m for m in manifests if "scrape_configs" in m)["scrape_configs"][0]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert command[0] == "hypercorn"
    bind = command.index("--bind")
    args = [*command[2:bind], *command[bind + 2 :]]  # the test binds a free port
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["ports"][0]["containerPort"] == int(command[bind + 1].rsplit(":")[1])
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == command[bind + 1].rsplit(":")[1]
    assert scrape["kubernetes_sd_configs"] == [{"role": "pod"}]
    server = hypercorn(command[1], *args, env=env)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for probe in ("livenessProbe", "readinessProbe"):
            answer = await http.get(container[probe]["httpGet"]["path"])
            assert answer.status_code == 200, (probe, answer.text)
            assert answer.json()["status"] == "ok"
        text = (await http.get(pod["metadata"]["annotations"]["prometheus.io/path"])).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"quart_flet_sessions", "quart_flet_frames", "quart_flet_ready"} <= names


def test_readme_publication_snippet_is_the_outage_test_apps_code() -> None:
    """The README's send with an outcome is the one tests/backends/test_redis.py runs
    against a Redis killed under a fan-out (tests/apps/redis_fanout.py)."""
    block = next(b for b in code_blocks("python") if "pubsub_hub(page)" in b)
    app = (ROOT / "tests" / "apps" / "redis_fanout.py").read_text()
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    position = 0
    for line in lines[1:]:  # after the comment saying where it goes
        position = app.find(line, position)
        assert position >= 0, f"README line not in tests/apps/redis_fanout.py: {line!r}"
