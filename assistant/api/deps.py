"""Request dependencies: the app's Services and the authenticated, rate-limited caller (keys and limits are the
app's, built in `create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from assistant.api.auth import Authenticator, KnownKey, retry_after
from assistant.api.errors import ApiError
from assistant.api.limits import RateLimiter
from assistant.principal import Principal
from assistant.services import Services


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "starting", "the assistant is still starting")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


AuthDep = Annotated[Authenticator, Depends(get_authenticator)]


def limit(request: Request, key: str) -> None:
    limiter: RateLimiter = request.app.state.limiter
    wait = limiter.check(key)
    if wait > 0:
        raise ApiError(429, "rate_limited", f"too many requests; retry in {wait:.1f}s", headers=retry_after(wait))


# How callers authenticate, as the OpenAPI schema states it (security schemes); the Authenticator reads the headers
# itself, so these only document them (auto_error off: a missing credential is the Authenticator's 401).
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="a widget or agent API key, or a visitor token (POST /v1/visitors)",
    auto_error=False,
)
API_KEY = APIKeyHeader(
    name="X-Api-Key", scheme_name="apiKey", description="an API key, instead of Authorization", auto_error=False
)
WIDGET_KEY = APIKeyHeader(
    name="X-Widget-Key",
    scheme_name="widgetKey",
    description="the store page's publishable key (pk_…); a visitor token as the bearer also names it",
    auto_error=False,
)


def get_principal(
    request: Request,
    auth: AuthDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    _api_key: Annotated[str | None, Depends(API_KEY)],
) -> Principal:
    principal = auth.principal(request)
    limit(request, principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_widget_key(
    request: Request,
    auth: AuthDep,
    _widget_key: Annotated[str | None, Depends(WIDGET_KEY)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> KnownKey:
    """The publishable key of a widget's page; counted per key and client address (every visitor shares the key)."""
    key = auth.widget_key(request)
    limit(request, f"{key.key_id}@{request.client.host if request.client else '-'}")
    return key


WidgetKeyDep = Annotated[KnownKey, Depends(get_widget_key)]
