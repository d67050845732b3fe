"""One browser's Flet session on one WebSocket: the connection that decodes
its frames and sends its patches (``connection``), the registry that holds
sessions across reconnects (``registry``), what the handshake carried
(``handshake``) and the OAuth callback that finishes a sign-in (``oauth``).
It imports the root modules, ``runtime``, ``client``, ``asgi``, ``http`` and
``backends``.
"""
