# -*- test-case-name: tests.test_admin -*-
"""
JSON answers of the admin API: bodies, errors naming the field at fault,
and reading a request's JSON body with only the keys allowed.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence

__all__ = ["ApiError", "answer", "error", "read_json"]

#: The largest request body the admin API reads.
MAX_BODY = 64 * 1024


class ApiError(Exception):
    """
    An answer other than success: C{code} and a JSON error body.

    @ivar code: the HTTP status.
    @ivar message: what is wrong, for a person.
    @ivar field: the request field at fault, or L{None}.
    @ivar headers: more response headers (C{Allow} with 405,
        C{WWW-Authenticate} with 401).
    """

    def __init__(
        self, code: int, message: str, field: Optional[str] = None, headers=()
    ) -> None:
        Exception.__init__(self, code, message, field)
        self.code = code
        self.message = message
        self.field = field
        self.headers = tuple(headers)

    def body(self) -> Dict[str, Any]:
        result: Dict[str, Any] = {"error": self.message}
        if self.field is not None:
            result["field"] = self.field
        return result


def answer(request, code: int, body: Any, headers=()) -> bytes:
    """
    Set C{code} and a JSON content type on C{request}, and return C{body}
    as JSON bytes to render.
    """
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    for name, value in headers:
        request.setHeader(name, value)
    return json.dumps(body, indent=1, sort_keys=True).encode("utf-8") + b"\n"


def error(request, failure: ApiError) -> bytes:
    return answer(request, failure.code, failure.body(), failure.headers)


def read_json(request, allowed: Sequence[str], required: Sequence[str] = ()) -> Dict[str, Any]:
    """
    The request's body as a JSON object with only C{allowed} keys and every
    C{required} one.

    @raise ApiError: 400 naming the field (C{"body"} for the body itself).
    """
    content = request.content
    raw = content.read(MAX_BODY + 1) if content is not None else b""
    if len(raw) > MAX_BODY:
        raise ApiError(400, "the body is too large", "body")
    try:
        value = json.loads(raw.decode("utf-8") if raw else "")
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"not valid JSON: {e}", "body") from None
    if not isinstance(value, dict):
        raise ApiError(400, "expected a JSON object", "body")
    for key in value:
        if key not in allowed:
            raise ApiError(
                400, f"unknown field (known: {', '.join(allowed)})", str(key)
            )
    for key in required:
        if key not in value:
            raise ApiError(400, "required field is missing", key)
    return value
