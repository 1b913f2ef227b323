"""Schemathesis hooks of the fuzz part (loaded by `st run` through its config file; the role in FUZZ_ROLE).

JSON Schema states each field's limits, not rules between fields or between a field and the caller's role. Each
rule below is stated in its operation's description and answered with 422 (tests/api check that); a *positive*
case that breaks one is not schema-valid data in the API's sense, so it is left out of the positive cases. Negative
cases all go out as generated.
"""

from __future__ import annotations

import os
import re
from typing import Any

import schemathesis
from schemathesis import GenerationMode

ROLE = os.environ.get("FUZZ_ROLE", "")
# The event id's pattern as the schema states it (assistant/schemas.py EVENT_ID_PATTERN; the hooks read only the
# schema's words, not the service's code, so it is restated here and tests/unit checks the two agree).
EVENT_ID = re.compile(r"^[0-9a-f]{32}:(0|[1-9][0-9]{0,8})$")


def _query(case: Any) -> dict[str, Any]:
    return case.query if isinstance(case.query, dict) else {}


def _body(case: Any) -> dict[str, Any]:
    return case.body if isinstance(case.body, dict) else {}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def breaks_a_stated_rule(method: str, path: str, case: Any) -> str | None:
    """The rule a case breaks (its words), or None."""
    query, body = _query(case), _body(case)
    headers = {str(k).lower(): v for k, v in dict(case.headers or {}).items()}
    if method == "GET" and path == "/v1/search":
        low, high = _number(query.get("min_price")), _number(query.get("max_price"))
        if low is not None and high is not None and low > high:
            return "min_price above max_price"
    if method == "POST" and path == "/v1/chat":
        if headers.get("last-event-id") is not None and body.get("session_id") is None:
            return "Last-Event-ID without the session_id"
        if ROLE == "agent" and body.get("session_id") is None and body.get("shopper_id") is None:
            return "an agent's new session without its shopper_id"
    if ROLE == "agent":
        if path == "/v1/cart" and query.get("shopper_id") is None:
            return "an agent's cart without the shopper_id"
        if path == "/v1/cart/items" and body.get("shopper_id") is None:
            return "an agent's cart add without the shopper_id"
        events = body.get("events")
        if path == "/v1/events" and isinstance(events, list):
            if any(not isinstance(e, dict) or e.get("shopper_id") is None for e in events):
                return "an agent's event without its shopper_id"
    return None


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    meta = getattr(case, "meta", None)
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    # Schemathesis 4.32's coverage phase labels some cases positive while one of their parts is negative (e.g. a
    # Last-Event-ID of 0 against its pattern, sent beside a valid body): neither positive nor negative, left out.
    if any(c.mode != GenerationMode.POSITIVE for c in meta.components.values()):
        return False
    # ... and some whose every part is labelled positive, with a Last-Event-ID header of "0" against its pattern.
    headers = {str(k).lower(): v for k, v in dict(case.headers or {}).items()}
    if headers.get("last-event-id") is not None and not EVENT_ID.match(str(headers["last-event-id"])):
        return False
    return breaks_a_stated_rule(case.operation.method.upper(), case.operation.path, case) is None
