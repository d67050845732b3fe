"""What a Quart app holds: the QuartFlet extension (``extension``), one Flet
app's building blocks (``fletapp``), the blueprint and the ready app
(``blueprint``), the probes (``health``), Prometheus metrics (``metrics``)
and serving with Hypercorn (``server``). It imports every room below it,
never ``cli`` or ``testing``.
"""
