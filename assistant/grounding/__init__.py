"""Grounding: every price, stock claim, product name, number, date, percentage, size, colour, material and feature
in an answer must be backed by the turn's facts; and the answer must read as whole sentences.

The model's text streams through three stages, each in its own module:

- `grounding_filter`: `GroundingFilter` lets the text out one whole sentence at a time (only the prompt's opener,
  "The", goes out before its sentence ends) and has `sentence_check` repair it (a wrong price or stock level is
  replaced by the catalog's) or drop it whole (a product the facts do not hold, an unbacked claim found by
  `claims`), and `form_check` drop echoes of the shopper's message, fragments and repeats;
- `quality_gate`: `QualityGate` rejects refusals and confusion in the first words and stops loops;
- `limit_guard`: `LimitGuard` ends an answer the token limit cuts at its last whole sentence.

`facts` holds what an answer may state (`Facts`, `CatalogTitles`) and how prices and stock are written; `claims`
the checkable claims of a text and the values of the facts that back them; `vocab` the colour, material, feature,
date and unit words; `patterns` the regular expressions the stages share.
"""

from assistant.grounding.claims import Claim, claims_in
from assistant.grounding.facts import CatalogTitles, Facts, amounts_in, format_price, stock_text
from assistant.grounding.form_check import FormCheck
from assistant.grounding.grounding_filter import GroundingFilter, ground
from assistant.grounding.limit_guard import LimitGuard
from assistant.grounding.quality_gate import QualityGate
from assistant.grounding.sentence_check import Check, check_sentence, stock_claim_ok

__all__ = [
    "CatalogTitles",
    "Check",
    "Claim",
    "Facts",
    "FormCheck",
    "GroundingFilter",
    "LimitGuard",
    "QualityGate",
    "amounts_in",
    "check_sentence",
    "claims_in",
    "format_price",
    "ground",
    "stock_claim_ok",
    "stock_text",
]
