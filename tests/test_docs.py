"""The docs site: its code blocks must stay true, and it must build.

Every Python block under docs/ is compiled; the blocks that build an app are
run as tests/test_readme.py runs the README's example; the site itself is
built with ``mkdocs build --strict`` (broken links, anchors and snippets
fail it)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, FletTestClient, find_controls

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def page_text(page: str) -> str:
    return (DOCS / page).read_text()


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def block(page: str, marker: str, language: str = "python") -> str:
    """The first ``language`` block of ``page`` that contains ``marker``."""
    return next(b for b in code_blocks(page_text(page), language) if marker in b)


def run_block(page: str, marker: str, prefix: str = "") -> dict[str, Any]:
    """Run a block (after ``prefix``, the blocks it continues) as a module."""
    namespace: dict[str, Any] = {"__name__": "quart_app"}
    exec(compile(prefix + block(page, marker), str(DOCS / page), "exec"), namespace)
    return namespace


def test_the_docs_have_pages() -> None:
    assert len(PAGES) > 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_python_block_compiles(page: Path) -> None:
    for number, code in enumerate(code_blocks(page.read_text(), "python")):
        compile(code, f"{page.relative_to(DOCS)} block {number}", "exec")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_yaml_block_parses(page: Path) -> None:
    import yaml

    for code in code_blocks(page.read_text(), "yaml"):
        assert yaml.safe_load(code)


def test_the_front_page_example_is_the_readmes() -> None:
    readme = code_blocks((ROOT / "README.md").read_text(), "python")[0]
    ours = code_blocks(page_text("index.md"), "python")[0]
    assert [line for line in readme.splitlines() if not line.startswith("#")] == (ours.splitlines())
    assert ours in page_text("tutorial.md")


def test_the_options_reference_names_every_option() -> None:
    from dataclasses import fields

    from quart_flet.options import ENV_VARS, FletOptions

    sys.path.insert(0, str(DOCS))
    try:
        import hooks
    finally:
        sys.path.remove(str(DOCS))
    generated = hooks.on_page_markdown("<!-- quart-flet:options -->")
    for option in fields(FletOptions):
        assert f"### `{option.name}` {{#{option.name}}}" in generated, option.name
        assert f"`{ENV_VARS[option.name]}`" in generated if option.name in ENV_VARS else True
        assert option.metadata["doc"][1:] in generated, option.name
    assert "<!-- quart-flet:options -->" in page_text("reference/options.md")


# the tutorial


async def test_the_tutorial_counter_counts_and_its_slow_reset_waits_alone() -> None:
    from quart_flet.testing import open_user

    app = run_block("tutorial.md", "slow_reset")["app"]
    async with open_user(app) as first, open_user(app) as second:
        await first.tap("Add one")
        await first.should_see("1")
        await first.tap("Slow reset")  # sleeps in a pool thread
        await second.tap("Add one")
        await second.should_see("1")
        await first.should_see("0")


def _pytest_in(tmp_path: Path, test_file: str, snippet: str, files: dict[str, str]) -> None:
    """Save ``snippet`` as a newcomer would and run it under pytest with the
    plugin (loaded with -p: an editable checkout may lack the entry point)."""
    for name, text in {**files, test_file: snippet}.items():
        (tmp_path / name).write_text(text)
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
            str(tmp_path / test_file),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_tutorials_test_passes_against_its_counter(tmp_path: Path) -> None:
    _pytest_in(
        tmp_path,
        "test_quart_app.py",
        block("tutorial.md", "flet_app_under_test"),
        {"quart_app.py": block("tutorial.md", "slow_reset")},
    )


def test_the_testing_guides_snippet_passes(tmp_path: Path) -> None:
    """The "Test your app" snippet, saved as test_counter.py, for examples/."""
    _pytest_in(tmp_path, "test_counter.py", block("how-to/testing.md", "examples.counter"), {})


# how-to guides


async def test_the_own_routes_recipe_serves_its_flet_app() -> None:
    app = run_block("how-to/own-routes.md", "hello.static_files(path)")["app"]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        index = await client.get("/hello/")
        html = await index.get_data(as_text=True)
        assert index.status_code == 200 and 'flet.webSocketEndpoint="/sockets/hello"' in html
        async with client.websocket("/sockets/hello") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            patch = await flet.receive_until(lambda m: m[0] == 2)
            assert find_controls(patch, _c="Text", value="Hello from my own routes")


async def test_the_login_guides_handshake_example_greets_the_signed_in_user() -> None:
    from quart_auth import authenticated_client

    app = run_block("how-to/login.md", "handshake(page)")["app"]
    async with app.test_app() as test_app:
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


async def test_the_login_guides_blueprint_guard_holds() -> None:
    first = block("how-to/login.md", "handshake(page)")
    namespace = run_block("how-to/login.md", "before_websocket", prefix=first)
    await _login_guard_holds(namespace["app"], "/members/ws")


async def test_the_login_guides_login_required_recipe_holds_on_own_routes() -> None:
    first = block("how-to/login.md", "handshake(page)")
    namespace = run_block("how-to/login.md", "@login_required", prefix=first)
    await _login_guard_holds(namespace["app"], "/members/socket")


def test_the_nginx_sticky_recipe_matches_the_tested_config() -> None:
    from test_sticky import NGINX_CONF, STICKY

    upstream = block("how-to/scale-out.md", "upstream flet", "nginx")
    tested = NGINX_CONF + STICKY
    for line in upstream.splitlines():
        line = line.split("#")[0].strip()
        if line.startswith(
            ("hash ", "proxy_pass", "proxy_http_version", "proxy_set_header U", "proxy_next_")
        ):
            assert line in tested, line
        if line.startswith("proxy_set_header Host"):
            assert line in tested, line


def test_the_publication_snippet_is_the_outage_test_apps_code() -> None:
    """The send with an outcome is the one tests/backends/test_redis.py runs against a
    Redis killed under a fan-out (tests/apps/redis_fanout.py)."""
    snippet = block("how-to/scale-out.md", "pubsub_hub(page)")
    app = (ROOT / "tests" / "apps" / "redis_fanout.py").read_text()
    lines = [line.strip() for line in snippet.splitlines() if line.strip()]
    position = 0
    for line in lines[1:]:  # after the comment saying where it goes
        position = app.find(line, position)
        assert position >= 0, f"docs line not in tests/apps/redis_fanout.py: {line!r}"


@pytest.mark.server
async def test_the_kubernetes_probes_and_scrape_answer(hypercorn: Any) -> None:
    """The Deployment's own command and env, served for real: each probe
    path answers 200 on its port, the scrape path parses as Prometheus text."""
    import httpx
    import yaml
    from prometheus_client.parser import text_string_to_metric_families

    manifests = [yaml.safe_load(b) for b in code_blocks(page_text("how-to/health.md"), "yaml")]
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


# reference


async def test_the_session_hooks_snippet_counts_live_sessions() -> None:
    namespace = run_block("reference/api.md", "on_session_end=ended")
    app, live = namespace["app"], namespace["live"]
    async with app.test_app() as test_app:
        async with test_app.test_client().websocket("/ws") as ws:
            flet = FletTestClient(ws)
            await flet.register()
            patch = await flet.receive_until(lambda m: m[0] == 2)
            assert find_controls(patch, _c="Text", value="1 sessions live")
            assert live == {flet.session_id}
    assert live == set()  # the server stopped: the session ended


def test_the_migration_page_includes_the_readmes_table() -> None:
    """The name-by-name table lives once, in the README (tests/test_options.py
    checks it covers flet.fastapi); the page includes that section."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count("<!-- --8<-- [start:migration] -->") == 1
    assert readme.count("<!-- --8<-- [end:migration] -->") == 1
    assert '--8<-- "README.md:migration"' in page_text("how-to/migrate.md")


# the site


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    """mkdocs build --strict: a broken link or anchor, a missing snippet or an
    unreadable docstring fails it (as .ci/run builds it)."""
    missing = [
        name
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
        if importlib.util.find_spec(name.split(".")[0]) is None
        or (name.count(".") and importlib.util.find_spec(name) is None)
    ]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the docs tools are not installed: {missing} (the test extra has them)")
        pytest.skip(f"the docs tools are not installed: {missing} (pip install -e '.[docs]')")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "options" / "index.html").is_file()


def test_the_deploy_guides_procfile_is_the_procfile() -> None:
    shown = block("how-to/deploy.md", "web: quart-flet run", "text").strip()
    procfile = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    assert shown == procfile
