"""The intent ontology as data: every intent the router can return, its group and its own examples."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

ONTOLOGY_PATH = Path(__file__).with_name("ontology.yaml")
OUT_OF_SCOPE = "out_of_scope"
SHOPPING_INTENTS = (
    "search_products",
    "product_question",
    "compare_products",
    "recommendation",
    "cart_add",
    "cart_remove",
)
# The 11 Bitext customer-support categories, spelled as in its train.csv `category` column.
BITEXT_GROUPS = (
    "ACCOUNT",
    "CANCELLATION_FEE",
    "CONTACT",
    "DELIVERY",
    "FEEDBACK",
    "INVOICES",
    "NEWSLETTER",
    "ORDER",
    "PAYMENT",
    "REFUNDS",
    "SHIPPING",
)
MIN_OWN_EXAMPLES = 15


class Intent(BaseModel):
    """One intent: `bitext` ones are trained from Bitext's utterances, `own` ones from `examples`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    group: str = Field(pattern=r"^[A-Z][A-Z_]*$")
    description: str = Field(min_length=1)
    source: Literal["bitext", "own"]
    examples: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_examples(self) -> Intent:
        if self.source == "own" and len(self.examples) < MIN_OWN_EXAMPLES:
            raise ValueError(f"intent {self.name}: {len(self.examples)} examples, need at least {MIN_OWN_EXAMPLES}")
        if self.source == "bitext" and self.group not in BITEXT_GROUPS:
            raise ValueError(f"intent {self.name}: group {self.group} is not a Bitext category")
        if len(set(self.examples)) != len(self.examples):
            raise ValueError(f"intent {self.name}: duplicate examples")
        return self


class Ontology(BaseModel):
    """All intents; names are unique and `out_of_scope` is always one of them."""

    version: int
    intents: list[Intent]

    @model_validator(mode="after")
    def _check_names(self) -> Ontology:
        names = [i.name for i in self.intents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate intent names: {dupes}")
        if OUT_OF_SCOPE not in names:
            raise ValueError(f"the ontology needs an {OUT_OF_SCOPE!r} intent")
        return self

    @property
    def names(self) -> list[str]:
        return [i.name for i in self.intents]

    def get(self, name: str) -> Intent:
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(f"unknown intent {name!r}")

    def group_of(self, name: str) -> str:
        return self.get(name).group

    def by_source(self, source: Literal["bitext", "own"]) -> list[Intent]:
        return [i for i in self.intents if i.source == source]

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for intent in self.intents:
            out.setdefault(intent.group, []).append(intent.name)
        return out

    def own_examples(self) -> tuple[list[str], list[str]]:
        """(texts, labels) for the intents Bitext does not cover."""
        texts, labels = [], []
        for intent in self.by_source("own"):
            texts += intent.examples
            labels += [intent.name] * len(intent.examples)
        return texts, labels

    def training_set(self, bitext_texts: Sequence[str], bitext_labels: Sequence[str]) -> tuple[list[str], list[str]]:
        """Bitext utterances plus the own examples; rejects Bitext labels the ontology lacks."""
        known = {i.name for i in self.by_source("bitext")}
        unknown = sorted(set(bitext_labels) - known)
        if unknown:
            raise ValueError(f"Bitext labels not in the ontology: {unknown}")
        texts, labels = self.own_examples()
        return list(bitext_texts) + texts, list(bitext_labels) + labels


def load_ontology(path: str | Path | None = None) -> Ontology:
    """Read and validate an ontology file (default: the packaged ontology.yaml)."""
    path = Path(path) if path else ONTOLOGY_PATH
    if path == ONTOLOGY_PATH:
        return _default_ontology()
    return _read(path)


@cache
def _default_ontology() -> Ontology:
    return _read(ONTOLOGY_PATH)


def _read(path: Path) -> Ontology:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read ontology: {exc}") from exc
    try:
        return Ontology.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid ontology: {exc}") from exc
