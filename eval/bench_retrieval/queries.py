"""The search texts: every distinct real query, then repeats made distinct by a suffix."""

from __future__ import annotations

from collections.abc import Sequence

# Suffixes that make repeated real queries distinct once every real query has been used.
QUERY_SUFFIXES = (
    "for men",
    "for women",
    "black",
    "cheap",
    "large",
    "2 pack",
    "for kids",
    "wireless",
    "stainless steel",
    "best rated",
    "small",
    "white",
)


def build_query_list(queries: Sequence[str], n: int) -> tuple[list[str], int]:
    """`n` search texts: every distinct real query first, then repeats made distinct by a suffix.

    Returns the list and how many of its entries are unmodified real queries.
    """
    real = list(dict.fromkeys(q.strip() for q in queries if q.strip()))
    if not real:
        raise ValueError("no queries to search with")
    out = []
    for i in range(n):
        base = real[i % len(real)]
        cycle = i // len(real)
        out.append(base if cycle == 0 else f"{base} {QUERY_SUFFIXES[(cycle - 1 + i) % len(QUERY_SUFFIXES)]}")
    return out, min(n, len(real))
