"""``python -m quart_flet.cli``: the ``quart-flet`` command."""

from quart_flet.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
