"""``python -m quart_flet.cli.prebuild``: build the compressed web client's
cache before serving (in a Docker image, on deploy, in CI), so the first
start does not spend minutes of a core on it.

Not imported by the package, so running it as a module is clean.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None, prog: str = "python -m quart_flet.cli.prebuild") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Build the brotli and gzip variants of the Flet web client that "
            "quart-flet serves, once per flet-web build (minutes of one core). "
            "Servers started afterwards find them in the cache."
        ),
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="where to keep them (default: $QUART_FLET_CACHE_DIR, else ~/.cache/quart-flet)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the cache directory")
    args = parser.parse_args(argv)

    from flet_web import get_package_web_dir

    from quart_flet.client.compression import variant_store

    store = variant_store(Path(get_package_web_dir()), args.cache_dir)
    started = time.monotonic()

    def progress(done: int, total: int, name: str) -> None:
        if not args.quiet:
            elapsed = time.monotonic() - started
            print(f"[{done + 1}/{total}] {name} ({elapsed:.0f} s)", file=sys.stderr, flush=True)

    store.build(progress=progress)
    if not args.quiet:
        print(f"done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(store.cache_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
