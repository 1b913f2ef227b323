"""Grounding: every price, stock claim and product name in an answer must be backed by the turn's facts.

The model's text is streamed through a `GroundingFilter`. Words are let through until the current
sentence holds something checkable (a digit, a currency sign, a stock word, a capitalised name);
from there the sentence is held until it ends, checked against the facts, and repaired (a wrong
price or stock level is replaced by the catalog's) or cut (a product the facts do not hold).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from retrieval.product import Product

MONEY = re.compile(
    r"(?:(?:US)?\$|€|£|\bUSD\s?|\bEUR\s?)\s?(?P<a>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)"
    r"|(?P<b>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)\s?(?:dollars?|bucks|usd|euros?)\b",
    re.IGNORECASE,
)
STOCK = re.compile(
    r"\b(?:(?P<n>\d+)\s+(?:units?\s+|pieces?\s+|items?\s+)?(?:left|in stock|available|remaining)"
    r"|(?P<neg>out of stock|sold out|unavailable|not available|not in stock)"
    r"|(?P<pos>in stock|available))\b",
    re.IGNORECASE,
)
HOLD_WORD = re.compile(r"^(?:stock|in-stock|available|unavailable|sold|left|remaining)\W*$", re.I)
WORD_WITH_SPACE = re.compile(r"\S+\s+")
LOOKBEHIND = 2  # "out of stock", "not in stock": the longest claim openers before the stock word
CLAIM_OPENER = re.compile(r"^(?:in|out|of|not|no|only|just|currently|still|units?|pieces?|items?|\d[\d,.]*)\W*$", re.I)
PARTIAL_OK = re.compile(r"[A-Za-z]+(?:'[A-Za-z]*)?")  # "I'd" may go out while arriving: no claim word has "'"
RISKY_WORDS = (
    "stock in-stock available unavailable sold left remaining in out of not no only just currently still units"
    " pieces items usd us eur euros dollars bucks"
).split()
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
CLOSED = re.compile(r"(?:[.!?][\"')\]]*|\n)\s*$")  # text that ends a sentence
CAPITALISED_RUN = re.compile(r"\b(?:[A-Z][\w'&-]+\s+)+[A-Z][\w'&-]+")
WORD = re.compile(r"[a-z0-9]+")
# Capitalised words that are not product names.
COMMON = {"i", "i'm", "i'll", "you", "we", "our", "the", "a", "an", "yes", "no", "sure", "sorry", "hello", "hi", "this"}


def _amount(match: re.Match[str]) -> float:
    return float((match.group("a") or match.group("b")).replace(",", ""))


def amounts_in(text: str) -> list[float]:
    """Every money amount `text` states, in order."""
    return [_amount(m) for m in MONEY.finditer(text)]


def format_price(price: float, currency: str = "USD") -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"{symbol}{price:,.2f}" if symbol else f"{price:,.2f} {currency}"


def stock_text(p: Product) -> str:
    """A product's stock as fact lines and repairs state it: the catalog's count, "out of stock", or
    "availability unknown"."""
    if p.stock is None:
        return "availability unknown"
    return f"{p.stock} in stock" if p.in_stock else "out of stock"


@dataclass
class Facts:
    """What the answer may state: the turn's products, money amounts from tools or the shopper, known names."""

    products: dict[str, Product] = field(default_factory=dict)
    amounts: set[float] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    catalog_titles: CatalogTitles = field(default_factory=lambda: CatalogTitles(()))

    def __post_init__(self) -> None:
        self.amounts = {round(a, 2) for a in self.amounts} | {
            round(p.price, 2) for p in self.products.values() if p.price is not None
        }
        self.vocab = set(WORD.findall(" ".join(self.names).lower()))
        for p in self.products.values():
            fields = filter(None, [p.title, p.brand, p.color, *p.category_path])
            self.vocab.update(WORD.findall(" ".join(fields).lower()))

    def mentioned(self, text: str) -> list[Product]:
        """Products of the facts that `text` names (by full title, or by most of its title words)."""
        return [p for _, p in self.mentions(text)]

    def mentions(self, text: str) -> list[tuple[int, Product]]:
        """(where the mention ends, product) for each product `text` names, in text order."""
        low = text.lower()
        words = set(WORD.findall(low))
        found = []
        for p in self.products.values():
            title = p.title.lower()
            at = low.find(title)
            if at >= 0:
                found.append((at + len(title), p))
                continue
            title_words = [w for w in WORD.findall(title) if len(w) > 2]
            if len(title_words) >= 2 and sum(w in words for w in title_words) >= max(2, 0.6 * len(title_words)):
                ends = [m.end() for w in title_words for m in re.finditer(rf"\b{re.escape(w)}\b", low)]
                found.append((max(ends), p))
        return sorted(found, key=lambda x: x[0])

    def foreign_titles(self, text: str) -> list[str]:
        """Catalog titles named in `text` that are not among the turn's products."""
        return [t for t, pid in self.catalog_titles.named_in(text) if pid not in self.products]

    def unknown_names(self, text: str) -> list[str]:
        """Capitalised multi-word names whose words the facts never use (likely invented products)."""
        out = []
        for m in CAPITALISED_RUN.finditer(text):
            words = WORD.findall(m.group(0).lower())
            if not text[: m.start()].strip():
                words = words[1:]  # a sentence's first word is capitalised anyway
            words = [w for w in words if w not in COMMON]
            if len(words) >= 2 and sum(w not in self.vocab for w in words) > len(words) / 2:
                out.append(m.group(0).strip())
        return out


def stock_claim_ok(m: re.Match[str], about: Product | None, facts: Facts) -> bool:
    """Does a STOCK match hold for `about` (or, with no product named, for every product of the facts)?"""
    products = [about] if about is not None else list(facts.products.values())
    if not products:
        return False
    if m.group("n") is not None:
        return about is not None and about.stock == int(m.group("n"))
    if m.group("neg") is not None:
        return all(not p.in_stock for p in products)
    return all(p.in_stock for p in products)


@dataclass
class Check:
    text: str
    withheld: list[str]


def check_sentence(sentence: str, facts: Facts) -> Check:
    """Repair or cut the unbacked claims of one sentence."""
    withheld: list[str] = []
    mentions = facts.mentions(sentence)
    only = list(facts.products.values()) if len(facts.products) == 1 else []
    subject = mentions[0][1] if len(mentions) == 1 else (only[0] if only else None)

    def subject_at(pos: int) -> Product | None:
        """The product a claim at `pos` is about: the last one named before it, else the sentence's subject."""
        before = [p for end, p in mentions if end <= pos]
        return before[-1] if before else subject

    foreign = facts.foreign_titles(sentence) or facts.unknown_names(sentence)
    if foreign:
        return Check("", [f"product not in the results: {n}" for n in foreign])

    def fix_price(m: re.Match[str]) -> str:
        amount = _amount(m)
        about = subject_at(m.start())
        if about is not None and about.price is not None:
            right = format_price(about.price, about.currency)
            if round(amount, 2) == round(about.price, 2):
                return m.group(0)
            withheld.append(f"price {m.group(0).strip()} replaced by {right}")
            return right
        if round(amount, 2) in facts.amounts:
            return m.group(0)
        withheld.append(f"price {m.group(0).strip()} not in the results")
        return "the price shown on the card"

    text = MONEY.sub(fix_price, sentence)

    def fix_stock(m: re.Match[str]) -> str:
        about = subject_at(m.start())
        if about is None and not facts.products:
            withheld.append(f"stock claim {m.group(0)!r} with no product")
            return "availability unknown"
        if stock_claim_ok(m, about, facts):
            return m.group(0)
        withheld.append(f"stock claim {m.group(0)!r} not backed")
        if about is None:
            return "availability as shown on the cards"
        return stock_text(about) if about.stock is not None else "not confirmed in stock"

    text = STOCK.sub(fix_stock, text)
    return Check(text, withheld)


class GroundingFilter:
    """Streams text through, holding and checking each sentence from its first checkable word."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.withheld: list[str] = []
        self._sentence = ""  # the current sentence, not yet ended
        self._emitted = 0  # how much of it was already let through
        self._holding = False  # the rest of the sentence waits for its end
        self.text = ""  # what was emitted, in full
        self.kept = 0  # sentences that went out with something in them
        self.cut = 0  # sentences cut for naming a product the facts do not hold

    def feed(self, delta: str) -> str:
        """Text that may be emitted now."""
        self._sentence += delta
        out = []
        while True:
            m = SENTENCE_END.search(self._sentence)
            if m is None:
                break
            sentence, self._sentence = self._sentence[: m.end()], self._sentence[m.end() :]
            out.append(self._close(sentence))
            self._emitted, self._holding = 0, False
        out.append(self._safe_prefix())
        piece = "".join(out)
        self.text += piece
        return piece

    def finish(self) -> str:
        """The held rest, checked."""
        piece = self._close(self._sentence) if self._sentence else ""
        self._sentence, self._emitted, self._holding = "", 0, False
        self.text += piece
        return piece

    def _safe_prefix(self) -> str:
        """Let complete words through until one needs the whole sentence to be judged."""
        if self._holding:
            return ""
        s = self._sentence
        complete = max(s.rfind(" "), s.rfind("\n")) + 1  # a word still arriving may become risky
        start = self._emitted
        words = list(WORD_WITH_SPACE.finditer(s, start, complete))
        safe: list[int] = []
        for k, m in enumerate(words):
            verdict = self._safe_word(m.group(0).strip(), s[: m.start()], [w.group(0).strip() for w in words[k + 1 :]])
            if verdict is None:
                break  # the next words decide
            if not verdict:
                self._holding = True
                break
            safe.append(m.end())
        # A claim opener among the last LOOKBEHIND safe words waits, with what follows it: "out of" may
        # become "out of stock" (and when holding, it belongs to the claim checked with the sentence).
        keep = len(safe)
        for k in range(max(0, len(safe) - LOOKBEHIND), len(safe)):
            if CLAIM_OPENER.match(words[k].group(0).strip()):
                keep = k
                break
        if keep:
            self._emitted = safe[keep - 1]
        gap = s[self._emitted : complete]
        if keep == len(words) and not gap.strip() and self._partial_safe(s[complete:], s[:complete]):
            self._emitted = len(s)  # the word still arriving cannot become a claim: no need to wait for its end
        return s[start : self._emitted]

    @staticmethod
    def _partial_safe(tail: str, before: str) -> bool:
        """Can a word still arriving go out now, whatever it becomes? Only letters, not the start of a stock, claim
        or currency word, and not capitalised after a sentence's first word (a name is checked once complete)."""
        if not PARTIAL_OK.fullmatch(tail) or (tail[0].isupper() and before.strip()):
            return False
        low = tail.lower()
        return not any(w.startswith(low) for w in RISKY_WORDS)

    def _about(self, before: str) -> Product | None:
        named = self.facts.mentions(before)
        if named:
            return named[-1][1]
        return next(iter(self.facts.products.values())) if len(self.facts.products) == 1 else None

    def _safe_word(self, word: str, before: str, following: list[str]) -> bool | None:
        """Safe: the word cannot start an unbacked claim. A stock claim or price is safe when it matches the
        facts for the product named last; a bare number waits for the two words after it (None)."""
        if HOLD_WORD.search(word):
            text = (before + word).rstrip(",;:).!?")
            claims = [m for m in STOCK.finditer(text) if m.end() == len(text)]
            return bool(claims) and stock_claim_ok(claims[-1], self._about(before[: claims[-1].start()]), self.facts)
        if re.search(r"[$€£]", word):
            m = MONEY.fullmatch(word.rstrip(",;:).!?"))
            return m is not None and self._price_ok(round(_amount(m), 2), before)
        if re.search(r"\d", word):
            if len(following) < 2:
                return None
            tail = " ".join([word, *following[:2]])
            money = MONEY.match(tail)
            if money is not None and money.group("b") is not None:
                return self._price_ok(round(_amount(money), 2), before)
            stock = STOCK.match(tail)
            if stock is not None and stock.group("n") is not None:
                return stock_claim_ok(stock, self._about(before), self.facts)
            return True  # a number that is neither a price nor a stock level ("4.5 stars")
        if word[:1].isupper() and before.strip():
            return all(w in self.facts.vocab or w in COMMON for w in WORD.findall(word.lower()))
        return True

    def _price_ok(self, amount: float, before: str) -> bool:
        named = self.facts.mentions(before)
        about = named[-1][1] if named else None
        if about is not None:
            return about.price is not None and round(about.price, 2) == amount
        return amount in self.facts.amounts

    def _close(self, sentence: str) -> str:
        check = check_sentence(sentence, self.facts)
        self.withheld.extend(check.withheld)
        head = sentence[: self._emitted]
        if not check.text:
            self.cut += 1
            if not head.strip():
                return ""
            return "… " if head[-1].isspace() else " … "
        if WORD.search(check.text.lower()):
            self.kept += 1
        if not check.text.startswith(head):
            # A repair touched the already emitted part (cannot happen: it held nothing checkable).
            return check.text[len(head) :] if len(check.text) > len(head) else ""
        return check.text[len(head) :]


def ground(text: str, facts: Facts) -> tuple[str, list[str]]:
    """Check a whole text at once: (grounded text, withheld claims)."""
    f = GroundingFilter(facts)
    out = f.feed(text) + f.finish()
    return out, f.withheld


class CatalogTitles:
    """The whole catalog's titles (lower case, longer than 8 characters), to spot products an answer names
    that the turn did not retrieve. Indexed by first word: a sentence is checked against the titles that
    start with one of its words, not against every title (this runs on the event loop for each sentence)."""

    def __init__(self, products: Iterable[Product]) -> None:
        self.ids: dict[str, str] = {}
        self._by_first_word: dict[str, list[str]] = {}
        for p in products:
            title = p.title.lower()
            first = WORD.search(title)
            if len(title) > 8 and first is not None and title not in self.ids:
                self.ids[title] = p.id
                self._by_first_word.setdefault(first.group(0), []).append(title)

    def __len__(self) -> int:
        return len(self.ids)

    def named_in(self, text: str) -> list[tuple[str, str]]:
        """(title, id) of each catalog title `text` contains, in the order they appear."""
        low = text.lower()
        found = {
            title: low.find(title)
            for word in set(WORD.findall(low))
            for title in self._by_first_word.get(word, ())
            if title in low
        }
        return [(title, self.ids[title]) for title in sorted(found, key=found.__getitem__)]


# Refusals and confusion, as word sequences (lower case, apostrophes dropped); judged in the first words.
JUNK_PHRASES = tuple(
    tuple(phrase.split())
    for phrase in (
        "im sorry", "i am sorry", "sorry for", "not sure", "i dont know what", "as an ai", "language model",
        "i cannot", "i cant", "im not able", "i am not able", "glad you", "youre right", "your loss",
    )
)  # fmt: skip
ENUMERATOR = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
HELD_WORD = re.compile(r"\S+\s+")
LIST_MARK = re.compile(r"\d+[.)]?|[-*•]")


def _norm(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def _junk_at(words: list[str], start: int, complete: int) -> tuple[str, str] | None:
    """("match", phrase) when a junk phrase is all there in `words` from `start`; ("maybe", phrase) when the words
    so far (the last possibly still arriving) may begin one; else None. The first `complete` words are whole."""
    verdict = None
    for phrase in JUNK_PHRASES:
        seen = words[start : start + len(phrase)]
        whole = seen[: max(0, complete - start)]
        partial = seen[len(whole) :]
        if whole != list(phrase[: len(whole)]):
            continue
        if partial and not phrase[len(whole)].startswith(partial[0]):
            continue
        if len(whole) == len(phrase):
            return "match", " ".join(phrase)
        verdict = ("maybe", " ".join(phrase))
    return verdict


class QualityGate:
    """Rejects refusals and confusion in the first words of the model's (already grounded) text, holding only
    the words that may begin one ("I" may become "I'm sorry"; "The Arctic" cannot and goes out at once); after
    that, stops the text when a sentence repeats an earlier one (small models loop). A rejected answer is
    replaced by the plan's fixed text."""

    def __init__(self, judge_words: int = 4) -> None:
        self.judge_words = judge_words  # refusals and confusion show in the first words
        self.rejected: str | None = None
        self.looping = False
        self._open = False
        self._seen: list[str] = []
        self._cur = ""  # the sentence being received (while judging: all text so far)
        self._sent = 0  # how much of it went out

    @property
    def released(self) -> bool:
        """Has any text gone out (so a rejection comes after some words)?"""
        return self._open or self._sent > 0 or bool(self._seen)

    def feed(self, text: str, *, last: bool = False) -> str:
        """Text that may go out now; `last`: the model is done, judge whatever is held."""
        if self.rejected or self.looping:
            return ""
        self._cur += text
        if not self._open:
            if not self._sent:
                self._cur = self._cur.lstrip()
                if not last and LIST_MARK.fullmatch(self._cur):
                    return ""  # "1" may become "1. ", which is dropped
                self._cur = ENUMERATOR.sub("", self._cur)
            release = self._judge(last)
            if self.rejected or not self._open:
                out = self._cur[self._sent : release]
                self._sent = max(self._sent, release)
                return out
        return self._pass()

    def _judge(self, last: bool) -> int:
        """Reject, or open, or say how much of the held text may go out: the words before the first that may
        begin a junk phrase."""
        spans = list(HELD_WORD.finditer(self._cur))
        tail = self._cur[spans[-1].end() if spans else 0 :]
        words = [_norm(m.group(0)) for m in spans] + ([_norm(tail)] if tail.strip() else [])
        complete = len(words) if last else len(spans)
        if not any(words):
            if last:
                self.rejected = "no words"
            return self._sent
        safe = 0
        for start in range(min(len(words), self.judge_words)):
            if not words[start]:  # punctuation; still arriving, it may become a word
                verdict = ("maybe", "") if start >= complete else None
            else:
                verdict = _junk_at(words, start, complete)
            if verdict is not None and verdict[0] == "match":
                self.rejected = verdict[1]
                return self._sent
            if verdict is not None:
                break
            safe = start + 1
        if safe >= self.judge_words or (last and safe == len(words)):
            self._open = True
        if safe == 0:
            return self._sent
        return spans[safe - 1].end() if safe <= len(spans) else len(self._cur)

    def finish(self, text: str = "") -> str:
        out = self.feed(text, last=True)
        if self._cur and not self.looping and not self.rejected:
            if _key(self._cur) in self._seen:
                self.looping = True
            else:
                out += self._cur[self._sent :]
            self._cur, self._sent = "", 0
        return out

    def _pass(self) -> str:
        out = ""
        while (m := SENTENCE_END.search(self._cur)) is not None:
            sentence, self._cur = self._cur[: m.end()], self._cur[m.end() :]
            key = _key(sentence)
            if key and key in self._seen:
                self.looping = True
                return out
            self._seen.append(key)
            out += sentence[self._sent :]
            self._sent = max(0, self._sent - len(sentence))
        partial = _key(self._cur)
        # A sentence that so far repeats the start of an earlier one is held until it ends or diverges.
        if not (partial and any(seen.startswith(partial) for seen in self._seen)):
            out += self._cur[self._sent :]
            self._sent = len(self._cur)
        return out


def _key(sentence: str) -> str:
    return " ".join(WORD.findall(sentence.lower()))


class LimitGuard:
    """Ends an answer that the model's token limit cuts short at its last whole sentence, not mid-word ("This
    sleek brown p"). From `window` tokens before the limit on, text goes out only up to a sentence end; the
    rest is held until the stream ends: said when the model finished by itself; when the limit cut it, an
    unfinished sentence none of which went out is left out, and one partly out ends before its last word
    (which may be cut mid-word) with "…"."""

    def __init__(self, max_tokens: int, window: int = 16) -> None:
        self.watch_from = max(max_tokens - window, 0)
        self.held = ""
        self.dropped = ""  # what a cut answer lost
        self._tail = ""  # the end of what went out

    def feed(self, text: str, tokens: int) -> str:
        """Text that may go out now, `tokens` model tokens into the stream."""
        if tokens >= self.watch_from or self.held:
            self.held += text
            ends = list(SENTENCE_END.finditer(self.held))
            if not ends:
                return ""
            text, self.held = self.held[: ends[-1].end()], self.held[ends[-1].end() :]
        self._tail = (self._tail + text)[-80:]
        return text

    def finish(self, cut: bool) -> str:
        held, self.held = self.held, ""
        if not cut or not held.strip() or CLOSED.search(held):
            return held
        if not self._tail.strip() or CLOSED.search(self._tail):
            self.dropped = held  # a sentence none of which went out: left out whole
            return ""
        # The sentence is partly out: finish it with its words but the last (perhaps cut mid-word), and "…".
        keep = held[: len(held) - len(held.split()[-1])] if held[-1:].strip() else held
        self.dropped = held[len(keep) :]
        return keep + "…"
