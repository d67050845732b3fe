"""Two Flet apps served from routes written by hand, at paths of our choosing,
each route open to decorators of its own (a login check, a rate limit...).

Run:
    FLET_SECRET_KEY=change-me .venv/bin/python -m hypercorn examples.own_routes:app \\
        --bind 127.0.0.1:8000 --workers 0
then open http://127.0.0.1:8000/counter/ and http://127.0.0.1:8000/files/

The counter lives at /counter/ with its WebSocket at /sockets/counter; the
upload example at /files/ with its WebSocket at /sockets/files and its upload
PUT at /put-here. Each FletRoutes names the endpoints; every URL the browser
is given is built from them with url_for.
"""

from quart import Quart, Response

from examples.counter import main as counter_main
from examples.upload import main as upload_main
from quart_flet import FletApp, FletRoutes, QuartFlet

app = Quart(__name__, static_folder=None)
QuartFlet(app, max_threads=8)  # what every Flet app of this app shares

counter = FletApp(
    counter_main,
    name="counter",
    routes=FletRoutes(index="counter_page", websocket="counter_socket"),
    app=app,
)
files = FletApp(
    upload_main,
    name="files",
    upload_dir="uploads",
    routes=FletRoutes(index="files_page", websocket="files_socket", upload="files_upload"),
    app=app,
)


@app.get("/")
async def home() -> str:
    return '<a href="/counter/">counter</a> <a href="/files/">uploads</a>'


# the web client: the index at the base URL, its files under it, and any
# other path (a route of the Flet app's own) answered with the index
@app.get("/counter/", defaults={"path": ""})
@app.get("/counter/<path:path>")
async def counter_page(path: str) -> Response:
    return await counter.static_files(path)


@app.websocket("/sockets/counter")
async def counter_socket() -> None:
    await counter.handle()


@app.get("/files/", defaults={"path": ""})
@app.get("/files/<path:path>")
async def files_page(path: str) -> Response:
    return await files.static_files(path)


@app.websocket("/sockets/files")
async def files_socket() -> None:
    await files.handle()


@app.put("/put-here")
async def files_upload() -> Response:
    return await files.upload()
