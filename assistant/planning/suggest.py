"""What suggestions share: the soft budget a request states ("about $40") and how picks are named in an answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.grounding import amounts_in, format_price
from assistant.intents.slots import Slots, find_budget
from retrieval.product import Product

MIN_SHOWN = 3  # a suggestion shows at least this many products when the catalog has them
POOL = 20  # candidates one search returns (the search tool's most)


@dataclass(frozen=True)
class SoftBudget:
    """The price range a suggestion searches, the price it prefers, and how the answer states the budget."""

    low: float | None
    high: float | None
    target: float | None
    said: str
    loose_floor: bool = False  # "about $40": the floor may go when too little fits under the ceiling

    def args(self) -> dict[str, float]:
        out = {"min_price": self.low, "max_price": self.high}
        return {k: round(v, 2) for k, v in out.items() if v is not None}

    def distance(self, price: float | None) -> float:
        if self.target is None or price is None or price <= 0:
            return 0.0
        return abs(math.log(price / self.target))


def soft_budget(message: str, slots: Slots) -> SoftBudget | None:
    """ "about $40" -> $24-$60, nearest $40 first; "under 50" -> up to 50; "$30-60" -> 30-60; None without one."""
    said = find_budget(message)
    written = {round(a, 2) for a in amounts_in(message)}

    def money(x: float, sign: bool | None = None) -> str:
        # The budget as the shopper wrote it: "$40" only where they wrote that currency amount (every dollar amount
        # in an answer must be a price or an amount the turn states), a bare number otherwise.
        dollars = round(x, 2) in written if sign is None else sign
        return ("$" if dollars else "") + (f"{x:,.0f}" if x == int(x) else f"{x:,.2f}")

    if said is not None and said.kind == "around" and said.amount is not None:
        a = said.amount
        return SoftBudget(round(0.6 * a, 2), round(1.5 * a, 2), a, f"around {money(a)}", loose_floor=True)
    low, high = (said.low, said.high) if said is not None else (slots.price_min, slots.price_max)
    if low is not None and high is not None:
        # "$20-40" as written: the second amount takes a sign only when both had one ("$20-$40").
        both = round(low, 2) in written and round(high, 2) in written
        return SoftBudget(low, high, (low + high) / 2, f"in the {money(low)}-{money(high, both)} range")
    if high is not None:
        return SoftBudget(None, high, 0.75 * high, f"under {money(high)}")
    if low is not None:
        return SoftBudget(low, None, 1.25 * low, f"over {money(low)}")
    return None


def and_join(words: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def listing(products: Sequence[Product], named: int = 3) -> str:
    """The first `named` products with their catalog prices, and how many more: "the A ($1.00), the B ($2.00) and
    2 more"."""
    listed = [
        f"the {p.title} ({format_price(p.price, p.currency)})" if p.price is not None else f"the {p.title}"
        for p in products[:named]
    ]
    more = len(products) - len(listed)
    return f"{', '.join(listed)} and {more} more" if more > 0 else and_join(listed)
