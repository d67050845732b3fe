"""One shape for every error response: JSON with a message."""

from __future__ import annotations

from quart import Response, jsonify


def json_error(status: int, message: str) -> Response:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response
