"""Two Flet apps under one domain: a counter at "/" and a greeter at "/sub-app".

Run: hypercorn examples.two_apps:app --bind 127.0.0.1:8000
then open http://127.0.0.1:8000/ and http://127.0.0.1:8000/sub-app/

Registration order does not matter: the app at "/" does not swallow
"/sub-app", and "/sub-app" redirects to "/sub-app/".
"""

import flet as ft
from quart import Quart

from examples.counter import main as counter_main
from quart_flet import flet_blueprint


async def greeter_main(page: ft.Page) -> None:
    page.title = "Flet greeter"
    name = ft.TextField(label="Your name", key="name")
    greeting = ft.Text("Hello, stranger", key="greeting")

    async def greet(e: ft.Event[ft.Button]) -> None:
        greeting.value = f"Hello, {name.value or 'stranger'}"
        greeting.update()

    page.add(ft.Text("Greeter"), name, ft.Button("Greet", on_click=greet), greeting)


# static_folder=None: Quart's /static route would shadow the client's files at "/".
app = Quart(__name__, static_folder=None)
app.register_blueprint(flet_blueprint(counter_main, name="counter"))
app.register_blueprint(flet_blueprint(greeter_main, name="greeter"), url_prefix="/sub-app")
