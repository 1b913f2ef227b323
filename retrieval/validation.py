"""One readable text for a pydantic ValidationError: each problem with the field it concerns."""

from __future__ import annotations

from pydantic import ValidationError


def errors_text(exc: ValidationError, prefix: str = "", *, unknown: str = "unknown field", whole: str = "") -> str:
    """`field: reason; …` (`PREFIX_FIELD: reason` with a prefix, as for environment settings).

    A field the model does not have reads `field: <unknown>`; a problem with no field is named `whole`."""
    parts = []
    for err in exc.errors():
        msg = unknown if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
        loc = ".".join(str(x) for x in err["loc"]) or whole
        parts.append(f"{prefix}{loc.upper()}: {msg}" if loc and prefix else f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
