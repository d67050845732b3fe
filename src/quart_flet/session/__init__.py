"""One browser's Flet session on one WebSocket: the connection that decodes
its frames and sends its patches (``connection``), what the handshake
carried (``handshake``) and the OAuth callback that finishes a sign-in
(``oauth``). The registry (``registry``) is what the Quart app holds for
all its Flet apps: their sessions across reconnects, the pool, the pubsub
hubs and the web clients' files. It imports the root modules, ``runtime``,
``client``, ``asgi``, ``http`` and ``backends``.
"""
