"""One shape for every error response: JSON with a message."""

from __future__ import annotations

from dataclasses import dataclass

from quart import Response, jsonify
from werkzeug.exceptions import HTTPException


@dataclass
class ErrorBody:
    """Every error response's body (as :func:`json_error` makes it), for the
    OpenAPI documents quart-schema builds."""

    error: str
    status: int


def json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


async def http_exception_as_json(error: HTTPException) -> Response:
    """Quart's HTTP errors (405, 400...) in the same JSON shape."""
    response = json_error(error.code or 500, error.description or error.name)
    for name, value in error.get_headers():  # e.g. Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def validation_summary(error: Exception) -> str:
    """What was wrong with a query, on one line: ``e: Input should be a valid
    integer; state: Field required`` (not pydantic's multi-line report with
    its documentation links)."""
    inner = error.args[0] if error.args and isinstance(error.args[0], Exception) else error
    errors = getattr(inner, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'query'}: {item['msg']}"
                for item in errors()
            )
        except (TypeError, KeyError):
            pass
    lines = str(inner).splitlines()
    return lines[0] if lines else type(inner).__name__


#: what a new Flet WebSocket hears while the server drains before a restart
STOPPING = (
    "this server is stopping (a restart or deploy): connect again, and a load "
    "balancer sends you to the instance replacing it"
)

#: what a Flet route answers when the app's startup never ran
NOT_STARTED = (
    "quart-flet is not started: the server did not run the ASGI lifespan startup "
    "(Daphne does not); serve the app with Hypercorn, uvicorn or Granian"
)
