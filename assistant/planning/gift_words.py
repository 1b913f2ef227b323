"""Gift and suggestion wording: who a present is for, what they like, the occasion, and the catalog categories each
points to (`gift_words.yaml`, validated at load). `GiftWords.read` finds them in a message, keeping only the
categories the catalog has; what is left of the message is its content (words that name a product or a need)."""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.intents.vocabulary import CatalogVocabulary, phrase_key, tokens

GIFT_WORDS = Path(__file__).with_name("gift_words.yaml")
Kind = Literal["recipient", "interest", "occasion"]
KINDS: tuple[Kind, ...] = ("recipient", "interest", "occasion")


class WordEntry(BaseModel):
    """Words that mean one thing (brother, bro), the categories they point to, and how the answer names it."""

    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    say: str | None = Field(default=None, description="how the answer names it; {word} is the word the message used")
    likes: str | None = Field(default=None, description="an interest, as in 'who likes {likes}'")

    @field_validator("words", "categories")
    @classmethod
    def _no_blanks(cls, v: list[str]) -> list[str]:
        if any(not w.strip() for w in v):
            raise ValueError("must not hold blank entries")
        return [w.strip() for w in v]

    @property
    def word(self) -> str:
        return self.words[0]


class GiftWordsFile(BaseModel):
    """gift_words.yaml: request and open words, and recipients, interests and occasions with their categories."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    request_words: list[str] = Field(min_length=1)
    open_words: str
    recipients: list[WordEntry]
    interests: list[WordEntry]
    occasions: list[WordEntry]

    @model_validator(mode="after")
    def _each_phrase_means_one_thing(self) -> GiftWordsFile:
        seen: dict[tuple[str, ...], str] = {}
        for kind, entries in self.sections():
            for entry in entries:
                for word in entry.words:
                    key = phrase_key(word)
                    if not key:
                        raise ValueError(f"{kind} word {word!r} has no letters")
                    owner = f"{kind} {entry.word!r}"
                    if seen.setdefault(key, owner) != owner:
                        raise ValueError(f"{word!r} is listed for both {seen[key]} and {owner}")
                if kind == "interest" and not entry.likes:
                    raise ValueError(f"interest {entry.word!r} needs `likes` (how the answer names it)")
        return self

    def sections(self) -> list[tuple[Kind, list[WordEntry]]]:
        return [("recipient", self.recipients), ("interest", self.interests), ("occasion", self.occasions)]


@dataclass(frozen=True)
class Found:
    """One entry the message names, with the categories of it this catalog has."""

    kind: Kind
    entry: WordEntry
    categories: tuple[str, ...]
    said: str = ""  # the words the message used ("nephew" for the entry that starts with "man")

    def phrase(self) -> str:
        """How the answer names it: 'your nephew', 'a birthday', 'cooking'."""
        if self.kind == "interest":
            return self.entry.likes or self.entry.word
        default = "for your {word}" if self.kind == "recipient" else "for {word}"
        return (self.entry.say or default).format(word=self.said or self.entry.word)


@dataclass(frozen=True)
class Wish:
    """What a gift or suggestion request says: what it names, whether it asks for a suggestion, what is left."""

    found: tuple[Found, ...] = ()
    request: bool = False
    content: tuple[str, ...] = ()  # the message's other words: a product or a need ("warm winter")

    def of(self, kind: Kind) -> list[Found]:
        return [f for f in self.found if f.kind == kind]

    def categories(self, kind: Kind) -> list[str]:
        """The categories the entries of `kind` point to, in order, without repeats."""
        return list(dict.fromkeys(c for f in self.of(kind) for c in f.categories))

    def names(self, key: tuple[str, ...]) -> bool:
        """Whether the message names an entry spelled `key` (a category slot that is really an interest)."""
        return any(key in {phrase_key(w) for w in f.entry.words} for f in self.found)


class GiftWords:
    """The word lists, matched on whole-word token phrases (longest first)."""

    def __init__(self, spec: GiftWordsFile) -> None:
        self.spec = spec
        self.request = {phrase_key(w) for w in spec.request_words}
        self.open = {t for w in spec.open_words.split() for t in tokens(w)}
        self.entries: dict[tuple[str, ...], tuple[Kind, WordEntry]] = {}
        for kind, entries in spec.sections():
            for entry in entries:
                for word in entry.words:
                    self.entries[phrase_key(word)] = (kind, entry)
        self.longest = max(len(k) for k in [*self.entries, *self.request])
        self._catalogs: weakref.WeakKeyDictionary[CatalogVocabulary, dict[int, tuple[str, ...]]] = (
            weakref.WeakKeyDictionary()
        )

    def names(self, phrase: str) -> bool:
        """Whether `phrase` is one of these words ("gift", "christmas", "cooking"), whatever a catalog calls its
        categories."""
        key = phrase_key(phrase)
        return key in self.request or key in self.entries

    def available(self, entry: WordEntry, vocab: CatalogVocabulary) -> tuple[str, ...]:
        """The entry's categories this catalog has, as the catalog spells them (worked out once per catalog)."""
        known = self._catalogs.setdefault(vocab, {})
        if id(entry) not in known:
            names = (vocab.canonical("category", c) for c in entry.categories)
            known[id(entry)] = tuple(dict.fromkeys(n for n in names if n is not None))
        return known[id(entry)]

    def read(self, message: str, vocab: CatalogVocabulary) -> Wish:
        """The recipients, interests and occasions `message` names, whether it asks for a suggestion, and its
        remaining content words (numbers and open words dropped)."""
        toks = tokens(message)
        found: list[Found] = []
        request = False
        content: list[str] = []
        i = 0
        while i < len(toks):
            for n in range(min(self.longest, len(toks) - i), 0, -1):
                key = tuple(toks[i : i + n])
                if key in self.request:
                    request = True
                    break
                hit = self.entries.get(key)
                if hit is not None:
                    kind, entry = hit
                    if all(f.entry is not entry for f in found):
                        found.append(Found(kind, entry, self.available(entry, vocab), " ".join(key)))
                    break
            else:
                n = 1
                word = toks[i]
                if word not in self.open and not word.isdigit() and len(word) > 1:
                    content.append(word)
            i += n
        return Wish(found=tuple(found), request=request, content=tuple(content))


@cache
def load_gift_words(path: Path = GIFT_WORDS) -> GiftWords:
    """The gift words of `path` (read and validated once)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return GiftWords(GiftWordsFile.model_validate(data))


@cache
def recipient_pattern() -> re.Pattern[str]:
    """ "(anything|something|a gift|ideas) … for my <recipient>": a request on someone's behalf, in lower case."""
    words = sorted({w.lower() for e in load_gift_words().spec.recipients for w in e.words}, key=len, reverse=True)
    names = "|".join(re.escape(w).replace(r"\ ", r"\s+") + "s?" for w in words)
    return re.compile(
        rf"\b(?:anything|something|stuff|things?|ideas?|gifts?|presents?)\b(?:\W+\w+){{0,4}}?\W+for\s+"
        rf"(?:my|a|an|our|his|her|the|your)\s+(?:\w+\s+)?(?:{names})\b"
    )
