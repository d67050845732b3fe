"""The compressed client's cache: its build says once what it costs and how
to avoid it, and ``python -m quart_flet.cli.prebuild`` is a clean command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flet_web import get_package_web_dir

from quart_flet.client.compression import VariantStore

REAL_CLIENT = Path(get_package_web_dir())


def small_client(root: Path) -> Path:
    web = root / "web"
    web.mkdir()
    (web / "index.html").write_bytes((REAL_CLIENT / "index.html").read_bytes())
    (web / "main.dart.js").write_bytes(b"console.log('flet');\n" * 4000)
    return web


def test_a_build_announces_itself_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    web = small_client(tmp_path)
    with caplog.at_level(logging.INFO, logger="quart_flet"):
        VariantStore(web, tmp_path / "cache").build()
        VariantStore(web, tmp_path / "cache").build()  # nothing left to build: silent
    announced = [r for r in caplog.records if "building the compressed web client" in r.message]
    assert len(announced) == 1 and announced[0].levelno == logging.WARNING
    assert "python -m quart_flet.cli.prebuild" in announced[0].message
    assert "of one core" in announced[0].message


def test_prebuild_is_a_clean_command(tmp_path: Path) -> None:
    web = small_client(tmp_path)
    env = {**os.environ, "FLET_WEB_PATH": str(web)}
    command = [sys.executable, "-m", "quart_flet.cli.prebuild", "--cache-dir", str(tmp_path / "c")]
    built = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert "Warning" not in built.stderr, built.stderr
    assert "[1/" in built.stderr and "main.dart.js" in built.stderr  # progress
    cache = Path(built.stdout.strip())
    assert cache.parent == tmp_path / "c" and (cache / "main.dart.js.br").is_file()

    helped = subprocess.run([*command[:3], "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--cache-dir" in helped.stdout
    assert "Warning" not in helped.stderr
