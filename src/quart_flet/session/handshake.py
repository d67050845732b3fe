"""What a Flet session's WebSocket handshake carried: headers, cookies, the
query, the client's address, the Quart session and, when the app uses
quart-auth, the signed-in user's ``auth_id``. Quart's ``websocket`` context
is gone in pool threads and later tasks, so it is copied when the browser
connects (and reconnects), and :func:`handshake` (its docstring has the
example the API page shows) returns that copy from anywhere.

Why and how: docs/reference/api.md, "The request in the page", and
docs/how-to/login.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
from quart import current_app, session, websocket
from werkzeug.datastructures import Headers, MultiDict

from quart_flet.client.browserid import digest
from quart_flet.runtime.session import RuntimeSession

__all__ = ["ClientInfo", "Handshake", "Owner", "handshake"]


@dataclass(frozen=True)
class Handshake:
    """A copy of one WebSocket handshake of a Flet session."""

    #: The WebSocket's URL, as the server saw it (after quart_flet.proxy_fix).
    url: str
    #: The request headers.
    headers: Headers
    #: The cookies the browser sent.
    cookies: dict[str, str]
    #: The query arguments of the WebSocket URL.
    args: MultiDict[str, str]
    #: The client's address (after quart_flet.proxy_fix, the real client's).
    remote_addr: str
    #: A copy of Quart's ``session`` (needs the app's SECRET_KEY).
    session: dict[str, Any] = field(default_factory=dict)
    #: quart-auth's ``current_user.auth_id`` when the app uses quart-auth and
    #: the user is signed in; None otherwise.
    auth_id: str | None = None

    @classmethod
    def of_websocket(cls) -> Handshake:
        """The current WebSocket's (call inside Quart's websocket context).

        The headers and the query arguments are the Websocket's own objects,
        not copies: Quart builds them once per connection and never changes
        them, and a copy would hold them twice for the session's whole life."""
        return cls(
            url=websocket.url,
            headers=websocket.headers,
            cookies=dict(websocket.cookies),
            args=websocket.args,
            remote_addr=websocket.remote_addr or "",
            session=dict(session) if current_app.secret_key else {},
            auth_id=_auth_id(),
        )

    @property
    def identity(self) -> str:
        """Who is signed in, as a session's owner keeps it: a digest of
        quart-auth's auth_id, "" when signed out."""
        return "" if self.auth_id is None else digest(f"user:{self.auth_id}")


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose a session is: the browser that started it (a digest of its
    browser id, :mod:`quart_flet.client.browserid`) and who was signed in there
    (:attr:`Handshake.identity`). Neither the IP nor the user agent counts:
    both change under a live page (proxies, mobile networks, browser updates)."""

    browser: str
    identity: str


@dataclass
class ClientInfo:
    """What the transport needs to know about the WebSocket request: its
    handshake, the page's URL and name as the client resolves them, and the
    browser ids it carries."""

    handshake: Handshake
    page_url: str
    page_name: str
    #: digests of the browser ids the request carried (one per cookie path
    #: that reaches it, the most specific first), or of the one its answer
    #: gives when it carried none
    browsers: tuple[str, ...] = ()

    @property
    def ip(self) -> str:
        return self.handshake.remote_addr

    @property
    def user_agent(self) -> str:
        return self.handshake.headers.get("user-agent", "")

    @property
    def owner(self) -> Owner:
        """Whose a session this client starts is."""
        return Owner(self.browsers[0] if self.browsers else "", self.handshake.identity)

    def is_browser_of(self, owner: Owner) -> bool:
        """Whether this is the browser that started ``owner``'s session
        (whoever is signed in there now)."""
        return bool(owner.browser) and owner.browser in self.browsers

    def as_fields(self) -> dict[str, Any]:
        """This client as plain values (msgpack), for another worker of the
        server: :meth:`from_fields` makes it again there."""
        shake = self.handshake
        return {
            "url": shake.url,
            "headers": list(shake.headers.items()),
            "cookies": shake.cookies,
            "args": list(shake.args.items(multi=True)),
            "remote_addr": shake.remote_addr,
            "session": _packable(shake.session),
            "auth_id": shake.auth_id,
            "page_url": self.page_url,
            "page_name": self.page_name,
            "browsers": list(self.browsers),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> ClientInfo:
        """The client :meth:`as_fields` described (KeyError, TypeError or
        ValueError for fields of another shape)."""
        handshake = Handshake(
            url=str(fields["url"]),
            headers=Headers([(str(k), str(v)) for k, v in fields["headers"]]),
            cookies={str(k): str(v) for k, v in dict(fields["cookies"]).items()},
            args=MultiDict([(str(k), str(v)) for k, v in fields["args"]]),
            remote_addr=str(fields["remote_addr"]),
            session=dict(fields["session"]),
            auth_id=None if fields["auth_id"] is None else str(fields["auth_id"]),
        )
        return cls(
            handshake=handshake,
            page_url=str(fields["page_url"]),
            page_name=str(fields["page_name"]),
            browsers=tuple(str(b) for b in fields["browsers"]),
        )

    @property
    def oauth_state(self) -> str | None:
        return self.handshake.cookies.get("flet_oauth_state")


def _packable(data: dict[str, Any]) -> dict[str, Any]:
    try:
        msgpack.packb(data)
    except (TypeError, ValueError):
        return {}  # a Quart session with values msgpack cannot carry
    return data


def _auth_id() -> str | None:
    if not current_app.extensions.get("QUART_AUTH"):
        return None
    from quart_auth import current_user  # the app uses it: it is installed

    try:
        auth_id = current_user.auth_id
    except RuntimeError:  # no singleton QuartAuth (QuartAuth(app, singleton=False))
        return None
    return None if auth_id is None else str(auth_id)


def handshake(page: Any = None) -> Handshake:
    """The handshake of ``page``'s session (default: ``ft.context.page``, the
    page of the handler running now, in a pool thread too).

    >>> def main(page: ft.Page) -> None:
    ...     page.add(ft.Text(f"Hello {handshake(page).auth_id}"))

    Raises RuntimeError for a page quart-flet does not serve.
    """
    if page is None:
        import flet as ft

        page = ft.context.page
    session = getattr(page, "session", None)  # page may be any object
    found = session.handshake if isinstance(session, RuntimeSession) else None
    if not isinstance(found, Handshake):
        raise RuntimeError("this page is not served by quart-flet: it has no handshake")
    return found
