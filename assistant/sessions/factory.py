"""`make_session_store(url)`: the backend named by SHOP_SESSION_STORE_URL's scheme."""

from __future__ import annotations

import re
from typing import Any, Literal

from assistant.sessions.base import DEFAULT_STALE_AFTER_S, DEFAULT_TIMEOUT_S, SessionStore

SETTING = "SHOP_SESSION_STORE_URL"


def redact(url: str) -> str:
    """The URL with any password replaced, fit for an error message or a log line."""
    return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", url)


async def open_session_store(url: str, **options: Any) -> SessionStore:
    """`make_session_store`, then a ping, so a bad URL or a down server fails at start-up."""
    store = make_session_store(url, **options)
    if not await store.ping():
        await store.aclose()
        raise RuntimeError(f"{SETTING}={redact(url)!r}: the session store does not answer")
    return store


def make_session_store(
    url: str,
    *,
    key_prefix: str = "shop:sessions:",
    ttl_s: int | None = None,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SessionStore:
    """sqlite:///path (sqlite:////abs/path, sqlite:///:memory:), redis://… / rediss://…, postgresql://…; a Redis or
    PostgreSQL call that gets no answer within `timeout_s` raises SessionStoreUnavailable."""
    backend = store_backend(url)
    if backend == "sqlite":
        from assistant.sessions.sqlite_store import SqliteSessionStore

        return SqliteSessionStore(sqlite_path(url), stale_after_s=stale_after_s)
    if backend == "redis":
        from assistant.sessions.redis_store import DEFAULT_TTL_S, RedisSessionStore

        options: dict[str, Any] = {"key_prefix": key_prefix, "stale_after_s": stale_after_s, "timeout_s": timeout_s}
        options["ttl_s"] = ttl_s if ttl_s is not None else DEFAULT_TTL_S
        return RedisSessionStore(url, **options)
    from assistant.sessions.postgres_store import PostgresSessionStore

    return PostgresSessionStore(url, stale_after_s=stale_after_s, timeout_s=timeout_s)


def store_backend(url: str) -> Literal["sqlite", "redis", "postgres"]:
    """Which backend a store URL names (sessions and the shared records use the same URL); ValueError naming the
    setting for a malformed SQLite URL or an unknown scheme."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ValueError(
                f"{SETTING}={redact(url)!r}: a SQLite URL is sqlite:///relative/path or sqlite:////abs/path"
            )
        return "sqlite"
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    raise ValueError(
        f"{SETTING}={redact(url)!r}: unknown scheme {scheme or '(none)'!r}; "
        "use sqlite:///path, redis://host:port/db or postgresql://user@host:port/db"
    )


def sqlite_path(url: str) -> str:
    """The file (or :memory:) of a sqlite:/// URL."""
    return url[len("sqlite:///") :]
