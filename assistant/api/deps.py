"""Request dependencies: the app's Services and the authenticated, rate-limited caller (keys and limits are the
app's, built in `create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assistant.api.auth import KeyRing, authenticate, retry_after
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


def get_principal(request: Request) -> Principal:
    keys: KeyRing = request.app.state.keys
    limiter: RateLimiter = request.app.state.limiter
    principal = authenticate(request, keys)
    wait = limiter.check(principal.key_id)
    if wait > 0:
        raise ApiError(429, "rate_limited", f"too many requests; retry in {wait:.1f}s", headers=retry_after(wait))
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
