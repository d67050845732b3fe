"""A Flet app added to an existing Quart app that keeps its own routes.

Run: hypercorn examples.existing_quart_app:app --bind 127.0.0.1:8000
then open http://127.0.0.1:8000/about and http://127.0.0.1:8000/flet-app/
"""

from quart import Quart

from examples.counter import main
from quart_flet import flet_blueprint

app = Quart(__name__)


@app.get("/")
async def home() -> str:
    return '<h1>My Quart site</h1><p><a href="/flet-app/">Open the Flet counter</a></p>'


@app.get("/about")
async def about() -> str:
    return "<h1>About</h1><p>A Quart app with a Flet app at /flet-app/.</p>"


@app.get("/api/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello from Quart"}


# One line adds the Flet app; its client, WebSocket and assets live under /flet-app/.
app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
