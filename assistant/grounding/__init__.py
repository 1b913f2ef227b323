"""Grounding: every price, stock claim and product name in an answer must be backed by the turn's facts.

The model's text streams through three stages, each in its own module:

- `grounding_filter`: `GroundingFilter` holds each sentence from its first checkable word and has
  `sentence_check` repair it (a wrong price or stock level is replaced by the catalog's) or cut it (a
  product the facts do not hold);
- `quality_gate`: `QualityGate` rejects refusals and confusion in the first words and stops loops;
- `limit_guard`: `LimitGuard` ends an answer the token limit cuts at its last whole sentence.

`facts` holds what an answer may state (`Facts`, `CatalogTitles`) and how prices and stock are written;
`patterns` the regular expressions the stages share.
"""

from assistant.grounding.facts import CatalogTitles, Facts, amounts_in, format_price, stock_text
from assistant.grounding.grounding_filter import GroundingFilter, ground
from assistant.grounding.limit_guard import LimitGuard
from assistant.grounding.quality_gate import QualityGate
from assistant.grounding.sentence_check import Check, check_sentence, stock_claim_ok

__all__ = [
    "CatalogTitles",
    "Check",
    "Facts",
    "GroundingFilter",
    "LimitGuard",
    "QualityGate",
    "amounts_in",
    "check_sentence",
    "format_price",
    "ground",
    "stock_claim_ok",
    "stock_text",
]
