"""The counter on quart-flet with Prometheus metrics on (scraped or not, the
counters run): ``hypercorn -k uvloop bench.apps.ours_counter_metrics:app``."""

from quart import Quart

from bench.apps.counter import main
from quart_flet import QuartFlet, flet_blueprint

app = Quart(__name__, static_folder=None)
QuartFlet(app, metrics_path="/metrics")
app.register_blueprint(flet_blueprint(main))
