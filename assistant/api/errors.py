"""One JSON error shape for every failure: {"error": {"code", "message", "details"}}; domain errors get their status
here (the core raises `assistant.errors` classes and knows nothing of HTTP)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant import errors
from assistant.schemas import ErrorResponse

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


# The status of each domain error; a subclass takes the nearest listed ancestor's.
DOMAIN_STATUS: dict[type[errors.AssistantError], int] = {
    errors.InvalidRequest: 422,
    errors.MessageRejected: 422,
    errors.MessageTooLong: 422,  # a field over its stated maxLength, as any other (the body limit is 413)
    errors.Forbidden: 403,
    errors.SessionNotFound: 404,
    errors.EventNotFound: 404,
    errors.InvalidLastEventId: 400,
    errors.UnknownProducts: 404,  # as one unknown product is (ProductNotFound): no such product
    errors.Unavailable: 503,
    errors.TurnNotFound: 404,
    errors.ProductNotFound: 404,
    errors.OutOfStock: 409,
    errors.FeatureOff: 409,
    errors.StateConflict: 409,
    errors.InvalidImage: 422,
    errors.TokenRejected: 401,
}

ERROR_MEANINGS = {
    400: "malformed request (e.g. the body is not valid JSON)",
    401: "missing or unknown key; a forged, tampered, expired or another key's visitor token",
    403: "the key may not do this, or not from this page's Origin",
    404: "no such session, turn or product for this caller",
    409: "the request conflicts with the state: out of stock, a feature this deployment has not configured, or an "
    "action the session's state does not allow (details: state, action)",
    413: "body over the size limit",
    415: "the body is not of a media type the operation takes",
    422: "invalid fields, each named in details; or a request the schema cannot rule out (each operation says which)",
    429: "over the rate limit; see Retry-After",
    503: "still starting, or a part the request needs is unavailable",
}


# What any call with a key can get: no or unknown key, a key that may not (or not from this Origin), over the rate
# limit, still starting; and 422 for a parameter out of its schema.
CALLER = (401, 403, 422, 429, 503)
# What a call with a JSON body can get besides: not JSON (400), over the body limit (413).
BODY = (400, 413)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these statuses, each in the one error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_MEANINGS[status]} for status in sorted(statuses)}


def domain_status(exc: errors.AssistantError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message for the client."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, details: Any = None, **kw: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, **kw)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, headers=exc.headers)

    @app.exception_handler(errors.AssistantError)
    async def _domain(_: Request, exc: errors.AssistantError) -> JSONResponse:
        return error_response(domain_status(exc), exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "problem": e.get("msg", "")}
            for e in errors
        ]
        fields = ", ".join(d["field"] or "body" for d in details)
        return error_response(422, "invalid_request", f"invalid fields: {fields}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal", "internal error; it was logged")
