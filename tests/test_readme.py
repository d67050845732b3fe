"""The README is the front door: its commands and example must stay true.

The snippets that moved to docs/ are checked where they live now, in
tests/test_docs.py."""

from __future__ import annotations

import re
from pathlib import Path

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


@pytest.mark.parametrize(
    "path", ["Procfile", "pyproject.toml", ".ci/run", ".ci/install", "mkdocs.yml"]
)
def test_top_level_files_exist(path: str) -> None:
    assert (Path(ROOT) / path).is_file()


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
    outside a checkout; extras install with -e from it, and they exist (in
    the README and in the docs)."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text()
        assert 'install "quart-flet[' not in text and "install 'quart-flet[" not in text, path
        for extra in re.findall(r'pip install -e "\.\[(\w+)\]"', text):
            assert extra in extras, (path, extra)
    assert "[uvloop]" not in (ROOT / "examples" / "hypercorn.toml").read_text()


def test_readme_links_lead_to_files_of_the_checkout() -> None:
    """The README points into docs/: every relative link names a file that exists."""
    for target in re.findall(r"\]\((?!https?://)([^)#]+)", README):
        assert (ROOT / target).is_file(), target


def test_readme_stays_short_and_leaves_the_rest_to_the_docs() -> None:
    assert len(README.splitlines()) <= 230
    assert "docs/tutorial.md" in README and "docs/reference/options.md" in README
