"""Request dependencies: the app's Services and the authenticated, rate-limited caller (keys and limits are the
app's, built in `create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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


def get_principal(request: Request, auth: AuthDep) -> Principal:
    principal = auth.principal(request)
    limit(request, principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_widget_key(request: Request, auth: AuthDep) -> KnownKey:
    """The publishable key of a widget's page; counted per key and client address (every visitor shares the key)."""
    key = auth.widget_key(request)
    limit(request, f"{key.key_id}@{request.client.host if request.client else '-'}")
    return key


WidgetKeyDep = Annotated[KnownKey, Depends(get_widget_key)]
