"""Benchmarks: quart-flet on Hypercorn against the official flet_web.fastapi on
uvicorn, same app, same load, one run. ``python -m bench.run``; see BENCHMARKS.md.
Not tests: never run in CI."""
