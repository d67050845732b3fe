"""``quart-flet doctor``: check a deployment's settings before users find out.

It loads the app, reads the Hypercorn settings it will be served with (a
config file, a Procfile's or a shell command's flags, or flags given here;
what is not given is Hypercorn's default) and says, in plain words, what is
wrong and how to fix it. Errors break something; warnings cost something.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hypercorn.config import Config
from quart import Quart

from quart_flet.app.server import SAFE_SETTINGS, app_for, resolve_server_options
from quart_flet.cli.target import TargetError, parse_target
from quart_flet.compat.stdlib import SubParsersAction
from quart_flet.options import FletOptions, ignored_env_warnings
from quart_flet.session import relay

MIN_BACKLOG = 1024  # after a restart every open page reconnects at once


@dataclass(frozen=True)
class Finding:
    """One thing wrong: what, and the fix."""

    level: Literal["error", "warning"]
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.level}: {self.problem}\n  fix: {self.fix}"


@dataclass(frozen=True)
class FletMountInfo:
    """A Flet app of the Quart app, where its routes are mounted."""

    name: str
    prefix: str  # '' at the root
    options: FletOptions


# Hypercorn's flags that matter here (its own names); the others are skipped.
_VALUE_FLAGS = {
    "--workers": "workers",
    "-w": "workers",
    "--backlog": "backlog",
    "--websocket-ping-interval": "websocket_ping_interval",
    "--read-timeout": "read_timeout",
    "--root-path": "root_path",
}
_INTS = {"workers", "backlog", "read_timeout"}


def add_doctor_parser(
    commands: SubParsersAction[argparse.ArgumentParser], target_help: str
) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check a deployment's settings and say what to fix",
        description=(
            "Check the app and the Hypercorn settings it is served with. Settings "
            "not given are Hypercorn's defaults. Exit status 1 when there are errors "
            "(with --strict, warnings too)."
        ),
    )
    parser.add_argument("target", nargs="?", help=f"{target_help} (default: the Procfile's)")
    parser.add_argument("--config", "-c", help="Hypercorn's config file (toml, or python:module)")
    parser.add_argument("--procfile", help="read the Hypercorn command of this Procfile's web:")
    parser.add_argument("--command", help="read this Hypercorn command line (as typed)")
    parser.add_argument("--workers", "-w", type=int)
    parser.add_argument("--backlog", type=int)
    parser.add_argument("--websocket-ping-interval", type=float)
    parser.add_argument("--read-timeout", type=int)
    parser.add_argument("--root-path")
    parser.add_argument("--strict", action="store_true", help="warnings fail too")


class RunConfig(Config):
    """What ``quart-flet run`` serves with: the safe settings, each worker
    serving in its own process (as ``--workers 0``), ``supervised`` of them
    under quart-flet's supervisor (0: the command's own process)."""

    supervised = 0


def hypercorn_settings(args: argparse.Namespace) -> tuple[Config, str | None]:
    """The Config the deployment gets and the app target its command names."""
    target: str | None = args.target
    words: list[str] = []
    if args.procfile:
        words = command_words(procfile_command(Path(args.procfile)))
    elif args.command:
        words = command_words(args.command)
    run = parse_run_words(words)
    if run is not None:
        config: Config = RunConfig()
        for name, value in {**SAFE_SETTINGS, "workers": 0, "supervised": run[1]}.items():
            setattr(config, name, value)
        flags: dict[str, Any] = {}
        named_target: str | None = run[0]
    else:
        flags, named_target, config_file = parse_hypercorn_words(words)
        from quart_flet.compat.hypercorn import hypercorn_load_config as _load_config

        config = _load_config(args.config or config_file)
    for name, value in flags.items():
        setattr(config, name, value)
    for name in ("workers", "backlog", "websocket_ping_interval", "read_timeout", "root_path"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    return config, target or named_target


def procfile_command(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise TargetError(f"{path} has no web: line")


def command_words(command: str) -> list[str]:
    """A shell command's words, platform variables given example values."""
    expanded = os.path.expandvars(command.replace("$PORT", os.environ.get("PORT", "8000")))
    words = shlex.split(expanded)
    while words and "=" in words[0] and not words[0].startswith("-"):  # VAR=x hypercorn ...
        words.pop(0)
    return words


def parse_run_words(words: Sequence[str]) -> tuple[str | None, int] | None:
    """(app target, workers) of ``quart-flet run target [--workers N]``
    (workers 0: no --workers nor WEB_CONCURRENCY), or None for another command."""
    rest = list(words)
    if rest and Path(rest[0]).name in ("python", "python3"):
        rest.pop(0)
    if rest[:2] in (["-m", "quart_flet.cli"], ["-m", "quart_flet"]):
        rest = rest[2:]
    elif rest and Path(rest[0]).name == "quart-flet":
        rest.pop(0)
    else:
        return None
    if rest[:1] != ["run"]:
        return None
    target, workers = None, os.environ.get("WEB_CONCURRENCY", "0").strip() or "0"
    rest.pop(0)
    while rest:
        word = rest.pop(0)
        name, eq, inline = word.partition("=")
        if name in ("--host", "--port", "--path", "--workers", "--fd"):
            value = inline if eq else (rest.pop(0) if rest else "")
            if name == "--workers":
                workers = value
        elif not word.startswith("-") and target is None:
            target = word
    try:
        return target, max(int(workers), 0)
    except ValueError:
        raise TargetError(f"quart-flet run --workers {workers!r} is not a whole number") from None


def parse_hypercorn_words(words: Sequence[str]) -> tuple[dict[str, Any], str | None, str | None]:
    """(settings, app target, config file) from ``hypercorn [flags] module:app``."""
    flags: dict[str, Any] = {}
    target = config_file = None
    rest = list(words)
    if rest and Path(rest[0]).name in ("hypercorn", "python", "python3"):
        rest.pop(0)
    if rest[:2] == ["-m", "hypercorn"]:
        rest = rest[2:]
    while rest:
        word = rest.pop(0)
        name, eq, inline = word.partition("=")
        if name in _VALUE_FLAGS or name in ("--config", "-c"):
            value = inline if eq else (rest.pop(0) if rest else "")
            if name in ("--config", "-c"):
                config_file = value
            else:
                setting = _VALUE_FLAGS[name]
                flags[setting] = int(value) if setting in _INTS else value
                if setting == "websocket_ping_interval":
                    flags[setting] = float(value)
        elif word.startswith("-"):
            if not eq and rest and not rest[0].startswith("-") and ":" not in rest[0]:
                rest.pop(0)  # another flag's value
        elif target is None:
            target = word
    return flags, target, config_file


def flet_mounts(app: Quart) -> list[FletMountInfo]:
    registry = app.extensions.get("quart_flet")
    if registry is None:
        return []
    found = []
    for name, mount in registry.mounts.items():
        endpoint = mount.routes.index  # the blueprint's, or a route of the app's own
        rules = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint]
        prefix = rules[0].rstrip("/") if rules else ""
        found.append(FletMountInfo(name, prefix, mount.options))
    return found


def check(app: Quart, config: Config) -> list[Finding]:
    """Every finding about ``app`` served with ``config``."""
    mounts = flet_mounts(app)
    findings: list[Finding] = []
    for checker in CHECKS:
        findings.extend(checker(app, mounts, config))
    return findings


def _where(mount: FletMountInfo) -> str:
    return f"the Flet app {mount.name!r} (at {mount.prefix or '/'})"


def check_secret_key(app: Quart, mounts: list[FletMountInfo], config: Config) -> Iterator[Finding]:
    for mount in mounts:
        uses = [
            what
            for what, on in (
                ("uploads", mount.options.upload_dir),
                ("Redis", mount.options.redis_url),
            )
            if on
        ]
        if uses and not (mount.options.secret_key or app.config.get("SECRET_KEY")):
            yield Finding(
                "error",
                f"{_where(mount)} uses {' and '.join(uses)} but has no secret key to sign "
                "with: the server refuses to start",
                "set FLET_SECRET_KEY (the same in every process), or app.config['SECRET_KEY'], "
                "or flet_blueprint(..., secret_key=...)",
            )


def check_redis(app: Quart, mounts: list[FletMountInfo], config: Config) -> Iterator[Finding]:
    from quart_flet.backends.base import safe_url

    for url in sorted({m.options.redis_url for m in mounts if m.options.redis_url}):
        try:
            import redis.asyncio
        except ImportError:
            yield Finding(
                "error",
                "redis_url is set but the redis package is not installed",
                'install the extra: pip install -e ".[redis]" (in this checkout)',
            )
            return
        error = asyncio.run(_ping(redis.asyncio, url))
        if error:
            yield Finding(
                "error",
                f"Redis at {safe_url(url)} is unreachable ({error})",
                "start Redis there, or correct FLET_REDIS_URL / redis_url "
                "(redis://host:6379/0, rediss:// for TLS)",
            )


async def _ping(module: Any, url: str) -> str | None:
    client = module.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
        return None
    except Exception as error:  # any failure is the finding, in words
        return f"{type(error).__name__}: {error}"
    finally:
        await client.aclose()


def check_workers(app: Quart, mounts: list[FletMountInfo], config: Config) -> Iterator[Finding]:
    workers = config.workers
    supervised = config.supervised if isinstance(config, RunConfig) else 0
    if workers == 1:
        yield Finding(
            "warning",
            "Hypercorn's --workers 1 (its default) runs the app in a child process and "
            "exits 0 even when the app failed to start, so a failed deploy looks fine",
            "serve in the process itself: --workers 0 (workers = 0 in the toml)",
        )
    if workers > 1:
        yield Finding(
            "warning",
            f"Hypercorn's --workers {workers}: when one worker dies Hypercorn stops all the "
            "others and exits 0, so a process manager never restarts the server",
            f"quart-flet run module:app --workers {workers} (restarts the dead worker alone; "
            "exits non-zero if workers keep dying)",
        )
    processes = max(workers, supervised)
    redis = any(m.options.redis_url for m in mounts)
    if processes > 1 and not redis and not relay.SUPPORTED:
        yield Finding(
            "warning",
            f"{processes} worker processes and no redis_url on a system without the "
            "workers' relay (Linux only): a reconnect that lands on another worker loses "
            "its session, pubsub reaches one worker's sessions, OAuth callbacks fail on "
            "the others",
            "set FLET_REDIS_URL (with a secret key) and use sticky sessions, or serve one process",
        )


def check_timeouts(app: Quart, mounts: list[FletMountInfo], config: Config) -> Iterator[Finding]:
    ping, read = config.websocket_ping_interval, config.read_timeout
    if ping is None:
        yield Finding(
            "warning",
            "no WebSocket ping interval: a browser that vanishes without closing (a laptop "
            "lid, a phone changing networks) keeps its session 'connected' forever",
            f"--websocket-ping-interval {SAFE_SETTINGS['websocket_ping_interval']:g}",
        )
    if read is None:
        yield Finding(
            "warning",
            "no read timeout: a dead connection is never dropped",
            f"--read-timeout {SAFE_SETTINGS['read_timeout']} (above the ping interval)",
        )
    elif ping is not None and read <= ping:
        yield Finding(
            "error",
            f"the read timeout ({read} s) is not above the ping interval ({ping:g} s): "
            "live pages are dropped between two pings",
            f"--read-timeout {max(SAFE_SETTINGS['read_timeout'], int(ping * 3))}",
        )


def check_backlog(app: Quart, mounts: list[FletMountInfo], config: Config) -> Iterator[Finding]:
    if config.backlog < MIN_BACKLOG:
        yield Finding(
            "warning",
            f"a backlog of {config.backlog} overflows when a few hundred browsers connect at "
            "once (after a restart every open page reconnects): they are refused",
            f"--backlog {SAFE_SETTINGS['backlog']}",
        )


def check_client_cache(
    app: Quart, mounts: list[FletMountInfo], config: Config
) -> Iterator[Finding]:
    if not mounts:
        return
    from flet_web import get_package_web_dir

    from quart_flet.client import compression

    store = compression.variant_store(Path(get_package_web_dir()))
    store.index()
    missing = [
        item.relative
        for item in store.files.values()
        if item.compressible
        and any(
            suffix not in item.variants
            for suffix in (compression.GZIP, compression.BROTLI_FAST)
            + ((compression.BROTLI_BEST,) if compression.is_hot(item.relative) else ())
        )
    ]
    if missing:
        yield Finding(
            "warning",
            f"the compressed web client is not built ({len(missing)} files missing in "
            f"{store.cache_dir}): the first start spends minutes of a core on it, and "
            "serves bigger files meanwhile",
            "run quart-flet prebuild (python -m quart_flet.cli.prebuild) where the app is "
            "served, with the same QUART_FLET_CACHE_DIR",
        )


def check_root_path(app: Quart, mounts: list[FletMountInfo], config: Config) -> Iterator[Finding]:
    root = config.root_path
    if not root:
        return
    if not root.startswith("/"):  # Hypercorn drops a trailing one itself
        yield Finding(
            "error",
            f"the root path {root!r} does not start with '/': no request path matches it",
            f"--root-path /{root.strip('/')}",
        )
        return
    for mount in mounts:
        if mount.prefix == root or mount.prefix.startswith(root + "/"):
            yield Finding(
                "error",
                f"{_where(mount)} has the prefix {mount.prefix} and Hypercorn adds the root "
                f"path {root} in front: the app is at {root}{mount.prefix}/, not {mount.prefix}/",
                f"mount it at {mount.prefix.removeprefix(root) or '/'} (the root path is "
                "the proxy's part) and have the proxy pass the full path",
            )


def check_flet_variables(
    app: Quart, mounts: list[FletMountInfo], config: Config
) -> Iterator[Finding]:
    for warning in ignored_env_warnings():
        name = warning.split(" ", 1)[0]
        if name in ("FLET_SERVER_PORT", "FLET_SERVER_IP", "FLET_WEB_APP_PATH"):
            yield Finding(
                "warning",
                f"{name} is set, but Hypercorn does not read it",
                "use Hypercorn's --bind / a url_prefix, or serve with quart-flet run "
                "(or quart_flet.run()), which read it",
            )


CHECKS: list[Callable[[Quart, list[FletMountInfo], Config], Iterator[Finding]]] = [
    check_secret_key,
    check_redis,
    check_workers,
    check_timeouts,
    check_backlog,
    check_client_cache,
    check_root_path,
]


def doctor(args: argparse.Namespace) -> int:
    config, target_text = hypercorn_settings(args)
    if not target_text:
        raise TargetError("name the app (app.py or module:app), or give --procfile")
    target = parse_target(target_text)
    server = resolve_server_options()
    loaded = target.load(prefer_main=server.path != "/")
    app = app_for(loaded, server)
    findings = check(app, config)
    if isinstance(loaded, Quart) and not isinstance(config, RunConfig):
        # served by hypercorn module:app, which reads no FLET_SERVER_* variable
        findings.extend(check_flet_variables(app, flet_mounts(app), config))
    for finding in findings:
        print(finding)
    errors = sum(finding.level == "error" for finding in findings)
    warnings = len(findings) - errors
    if findings:
        print(f"{errors} error(s), {warnings} warning(s) for {target_text}")
    else:
        print(f"no problems found for {target_text}")
    return 1 if errors or (args.strict and warnings) else 0
