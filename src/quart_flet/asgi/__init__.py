"""What changes Quart's and Hypercorn's own classes, each patch in one
module: the lean WebSocket (``leanws``), the watch for the server's stop
(``shutdown``), HTTP/2 streams answered early (``h2streams``) and the proxy
fix (``proxy``). It imports only the root modules (their private names come
from ``quart_flet.compat``).
"""
