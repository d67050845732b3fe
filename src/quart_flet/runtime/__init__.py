"""Flet's side of a session: where user code runs.

The session object, one per browser session, with its event turns and
state (``session``: ``RuntimeSession``, ``SyncState``), its loop-safe page
(``loopsafe``: ``LoopSafeSession``, the class the connection makes),
handler calls and events (``dispatch``), the pool threads that still see the
session's loop (``threads``) and pubsub (``pubsub``). It imports only the
root modules, and never Quart or Hypercorn: nothing here knows how the
frames travel.
"""
