"""One shape for every error response: JSON with a message."""

from __future__ import annotations

from quart import Response, jsonify
from werkzeug.exceptions import HTTPException


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
