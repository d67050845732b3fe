"""Flet's side of a session: where user code runs.

A session's event turns and shared state (``turns``), handler calls
(``dispatch``), the pool threads that still see the session's loop
(``threads``), the loop-safe page and session (``loopsafe``) and pubsub
(``pubsub``). It imports only the root modules, and never Quart or
Hypercorn: nothing here knows how the frames travel.
"""
