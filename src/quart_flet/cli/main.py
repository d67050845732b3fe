"""The ``quart-flet`` command: ``run`` an app (``--reload`` while editing it),
``prebuild`` the compressed web client, ``doctor`` a deployment's settings.

    quart-flet run app.py --port 8000 --reload
    quart-flet run package.module:main --path /flet-app
    quart-flet doctor package.module:app --workers 4 --backlog 100
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from hypercorn.config import Config

from quart_flet.app.server import (
    SERVER_ENV_VARS,
    ServerOptions,
    app_for,
    hypercorn_config,
    resolve_server_options,
    serve,
)
from quart_flet.cli.target import TargetError, parse_target
from quart_flet.compat.stdlib import SubParsersAction
from quart_flet.options import OptionError

TARGET_HELP = "the app: app.py, dir/app.py, module, module:main or module:app"
LOG_LEVELS = ("debug", "info", "warning", "error")


def _run_parser(commands: SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="serve an app with Hypercorn (--reload while editing it)",
        description=(
            "Serve a Flet main or a Quart app with Hypercorn and the Procfile's safe "
            "settings. The flags override FLET_SERVER_IP, FLET_SERVER_PORT and "
            "FLET_WEB_APP_PATH, which override the defaults (127.0.0.1, 8000, /)."
        ),
    )
    run.add_argument("target", help=TARGET_HELP)
    run.add_argument("--host", help="address to listen on (* or 0.0.0.0: every interface)")
    run.add_argument("--port", help="port to listen on (0: any free port)")
    run.add_argument("--path", help="where to mount a Flet main (e.g. /flet-app)")
    run.add_argument(
        "--reload",
        action="store_true",
        help="restart when a .py file of the app changes; open pages reconnect by themselves",
    )
    run.add_argument(
        "--access-logfile",
        help="log each request here (- for stdout), as Hypercorn's flag of that name",
    )
    run.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help=(
            "show quart-flet's own log lines (drains, saved sessions, relays...) "
            "from this level up on stderr (default: what the app configured)"
        ),
    )
    run.add_argument(
        "--workers",
        help=(
            "serve with this many worker processes on one port, a dead one replaced "
            "while the others serve (default: $WEB_CONCURRENCY, else one process)"
        ),
    )
    # the reloader's child: serve on the reloader's listening socket
    run.add_argument("--fd", type=int, help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> int:
    from quart_flet.cli.doctor import add_doctor_parser, doctor

    parser = argparse.ArgumentParser(prog="quart-flet", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version", action="version", version=f"quart-flet {version('quart-flet')}"
    )
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="command")
    _run_parser(commands)
    commands.add_parser(
        "prebuild",
        help="build the compressed web client's cache (python -m quart_flet.cli.prebuild)",
        add_help=False,
    )
    add_doctor_parser(commands, TARGET_HELP)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["prebuild"]:  # its own parser and --help
        from quart_flet.cli import prebuild

        return prebuild.main(arguments[1:], prog="quart-flet prebuild")
    args = parser.parse_args(arguments)
    try:
        if args.subcommand == "doctor":
            return doctor(args)
        return _run(args)
    except (OptionError, TargetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    flags = {"host": args.host, "port": args.port, "path": args.path}
    resolve_server_options({}, **flags)  # a bad flag's error names the flag, not a variable
    # a flag wins over the variable, as `flet run --port` does (it sets the variable)
    environ = {
        **os.environ,
        **{SERVER_ENV_VARS[name]: value for name, value in flags.items() if value is not None},
    }
    server = resolve_server_options(environ)
    target = parse_target(args.target)
    workers = _workers(args.workers, environ)
    if workers is not None and args.reload:
        given = "--workers" if args.workers is not None else "WEB_CONCURRENCY"
        raise OptionError(f"quart-flet: --reload serves one process; drop {given} to use it")
    if workers is not None and args.fd is None:
        from quart_flet.cli.supervisor import Supervisor

        return Supervisor(args.target, server, workers, _config(args, server)).run()
    if args.reload:
        from quart_flet.cli.reload import Reloader

        return Reloader(target, server, environ).run()
    app = app_for(target.load(prefer_main=server.path != "/"), server)
    serve(app, server, _config(args, server), fd=args.fd)
    return 0


def _config(args: argparse.Namespace, server: ServerOptions) -> Config:
    config = hypercorn_config(server)
    if args.access_logfile:
        config.accesslog = args.access_logfile
    if args.log_level:  # applied by Hypercorn in each process it serves in
        config.logconfig_dict = _log_config(args.log_level)
    return config


def _log_config(level: str) -> dict[str, Any]:
    """The ``quart_flet`` logger at ``level`` on stderr, in Hypercorn's format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "quart_flet": {
                "format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
                "datefmt": "%Y-%m-%d %H:%M:%S %z",
            }
        },
        "handlers": {
            "quart_flet": {
                "class": "logging.StreamHandler",
                "formatter": "quart_flet",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "quart_flet": {"level": level.upper(), "handlers": ["quart_flet"], "propagate": False}
        },
    }


def _workers(flag: str | None, environ: dict[str, str]) -> int | None:
    """--workers, else WEB_CONCURRENCY (as a PaaS sets it, and uvicorn reads
    it); None when neither is set: serve in this process."""
    if flag is not None:
        raw, name = flag, "--workers"
    elif environ.get("WEB_CONCURRENCY", "").strip():
        raw, name = environ["WEB_CONCURRENCY"], "--workers (from WEB_CONCURRENCY)"
    else:
        return None
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if not 1 <= count <= 256:
        raise OptionError(f"quart-flet option {name}: {raw!r} is not a whole number from 1 to 256")
    return count


if __name__ == "__main__":
    raise SystemExit(main())
