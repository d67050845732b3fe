"""A components app whose sign-in dialog's sync handler changes observable
state and closes the dialog: the re-render it asks for must wait until the
handler has returned (quart_flet.runtime.loopsafe), or the next click lands on a
detached control."""

from dataclasses import dataclass

import flet as ft
from quart import Quart

from quart_flet import flet_blueprint


@ft.observable
@dataclass
class Account:
    name: str = ""

    def sign_in(self, name: str) -> None:
        self.name = name

    def sign_out(self) -> None:
        self.name = ""


AccountContext: ft.ContextProvider[Account | None] = ft.create_context(None)


@ft.component
def Badge() -> ft.Control:  # a child that reads the account from a context
    account = ft.use_context(AccountContext)
    if account is None:
        return ft.ProgressRing()
    return ft.Column(
        [ft.Text(f"Member {account.name}"), ft.Button("Leave", on_click=account.sign_out)]
    )


@ft.component
def Door() -> ft.Control:
    account = ft.use_context(AccountContext)
    page = ft.context.page
    field: ft.Ref[ft.TextField] = ft.use_ref(None)

    def enter() -> None:  # sync: runs on the pool
        if account is not None:
            account.sign_in((field.current.value if field.current else "") or "someone")
        page.pop_dialog()

    def ask() -> None:
        page.show_dialog(
            ft.AlertDialog(
                modal=True,
                title=ft.Text("Who are you?"),
                content=ft.TextField(value="ada", ref=field),
                actions=[ft.TextButton("Enter", on_click=enter)],
            )
        )

    signed_in = account.name if account is not None else None
    ft.use_effect(lambda: ask() if account is not None and not account.name else None, [signed_in])
    return Badge()


@ft.component
def Member() -> ft.Control:
    account, _ = ft.use_state(Account)
    return ft.SafeArea(content=AccountContext(account, lambda: Door()))


app = Quart(__name__)
app.register_blueprint(flet_blueprint(lambda page: page.render(Member)), url_prefix="/club")
