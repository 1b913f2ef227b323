"""The escaping element builder (`Markup`, `esc`, `join`, `el`) and the small formatters every part of the page
shares: numbers, milliseconds, JSON-ish values, plurals, anchors, a scenario's status and its badge.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable
from typing import Any

VOID = {"input", "meta", "img"}


class Markup(str):
    """HTML built here, written as it is; any other str is escaped."""


def esc(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def join(children: Iterable[object]) -> Markup:
    out = []
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, list | tuple):
            out.append(join(child))
        else:
            out.append(esc(child))
    return Markup("".join(out))


def el(tag: str, *children: object, **attrs: object) -> Markup:
    """<tag attrs>children</tag>; `class_` is class, `aria_label` is aria-label; None or False leaves one out."""
    attr = "".join(
        f" {k.rstrip('_').replace('_', '-')}" + ("" if v is True else f'="{esc(v)}"')
        for k, v in attrs.items()
        if v is not None and v is not False
    )
    if tag in VOID:
        return Markup(f"<{tag}{attr}>")
    return Markup(f"<{tag}{attr}>{join(children)}</{tag}>")


def num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def ms(v: Any) -> str:
    return "—" if v is None else f"{v:,.1f} ms"


def as_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def anchor(name: str) -> str:
    return "s-" + re.sub(r"[^A-Za-z0-9_.-]", "-", name)


def status(s: dict[str, Any]) -> str:
    return "skipped" if s.get("skipped") else ("passed" if s.get("passed") else "failed")


def badge(word: str) -> Markup:
    return el("span", word, class_=f"badge {word}")
