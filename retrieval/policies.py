"""The store-policy index: passages (retrieval.policy_docs) found by BM25 + MiniLM, and the sentences that answer.

Passages are few (a store has a few dozen sections), so the index is built at start-up from the files; only the
sentence vectors are worth keeping, and they live in the shared embedding cache (unchanged sentences are never
encoded again).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
from pydantic import BaseModel, Field

from retrieval.encoders import EmbeddingCache, TextEncoder, embed_with_cache
from retrieval.lexical import Tokenizer
from retrieval.policy_docs import Passage, load_passages

# Shoppers paraphrase policies, so meaning outweighs shared words (BM25 alone misses "how many days ...").
LEXICAL_WEIGHT = 0.2
DENSE_WEIGHT = 0.8
# A passage of a policy that lists the question's intent ("delivery_period") ranks this much higher: the router
# has read the whole message, while a sentence's similarity can favour a neighbouring topic's wording.
INTENT_BONUS = 0.08
# A passage is relevant when its closest sentence is at least this close to the question (MiniLM cosine): on
# the shipped policies, questions they answer scored 0.45 and up, and off-topic customer-service questions
# ("can I switch to a business plan?") below 0.4. Without an encoder, a passage sharing a word other than a
# question word ("what", "how") is relevant.
MIN_DENSE = 0.42
QUESTION_WORDS = "what how when where which who why can could do does did is are will would should may"
# The first sentence of a section is written to stand alone (the section's answer in brief); among sentences
# about as close to the question, it goes first.
LEAD_BONUS = 0.03
# A question about a policy as a whole ("what is your refund policy?", or nothing but its title's words: "what is
# your warranty?") is answered by the policy's first section, which states it in brief, rather than by a detail section
# that happens to share its words.
OVERVIEW_WORDS = "policy policies rules terms"
OVERVIEW_BONUS = 0.1
# A question's topic is the policy whose topics (the front matter's words shoppers use for it) it names: "stopped
# working" is the warranty's, whatever product it stopped working in. Such a passage ranks this much higher, and it
# answers from a lower closeness: MiniLM scores a question that names a product and a time ("my headphones stopped
# working after 3 months, is that covered?") only ~0.3 against the warranty's sentences, as far as an off-topic one.
TOPIC_BONUS = 0.08
MIN_TOPIC_DENSE = 0.25
# A question that asks how long ("how long do I have to return shoes?", "what's your return window?"), or says how
# long ago ("they stopped working after 3 months, is that covered?"), is answered by a sentence that states the
# policy's period: passages and sentences that state one rank this much higher, more than all shared words can
# (LEXICAL_WEIGHT), so the period outweighs a sentence that shares the question's product word ("shoes ... can't be
# returned"); closeness in meaning still tells one policy's period from another's.
ASKS_PERIOD = re.compile(
    r"\bhow (?:long|soon|quickly|fast|many (?:\w+ )?(?:hours|days|weeks|months|years))\b|"
    r"\b(?:window|time ?limits?|time ?frames?|deadlines?|cut-?off)\b|\b(?:by|until) when\b",
    re.I,
)
STATES_PERIOD = re.compile(
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a|an)(?:\s*(?:to|-|–)\s*\d+)?\s+"
    r"(?:business\s+|working\s+|calendar\s+)?(?:hours?|days?|weeks?|months?|years?)\b",
    re.I,
)
PERIOD_BONUS = 0.25


class SentenceScore(BaseModel):
    text: str
    score: float


class PolicyHit(BaseModel):
    passage: Passage
    score: float
    lexical: float
    dense: float | None = None
    relevant: bool
    sentences: list[SentenceScore] = Field(default_factory=list)  # the passage's sentences, in order, scored

    def quote(self, max_sentences: int = 2, max_words: int = 50, margin: float = 0.1) -> list[str]:
        """The sentences that answer: the closest one, and the next closest ones within `margin` of it while the
        answer stays short, in the passage's order."""
        if not self.sentences:
            return []
        ranked = sorted(range(len(self.sentences)), key=lambda i: -self.sentences[i].score)
        best = self.sentences[ranked[0]].score
        picked = [ranked[0]]
        words = len(self.sentences[ranked[0]].text.split())
        for i in ranked[1:max_sentences]:
            n = len(self.sentences[i].text.split())
            if best - self.sentences[i].score > margin or words + n > max_words:
                break
            picked.append(i)
            words += n
        return [self.sentences[i].text for i in sorted(picked)]


def chunk_key(text: str) -> str:
    return hashlib.sha256(f"policy-sentence\n{text}".encode()).hexdigest()


class PolicyIndex:
    """BM25 over policy passages, plus cosine to each passage's sentence vectors when a text encoder is given."""

    def __init__(
        self,
        passages: list[Passage],
        bm25: bm25s.BM25,
        encoder: TextEncoder | None = None,
        vectors: np.ndarray | None = None,
        min_dense: float = MIN_DENSE,
    ) -> None:
        self.passages = passages
        self.by_id = {p.id: p for p in passages}
        self._bm25 = bm25
        self._tokenize = Tokenizer()
        self.encoder = encoder
        self.vectors = vectors  # one row per sentence chunk, passages in order
        self.min_dense = min_dense
        sizes = [len(p.chunks()) for p in passages]
        self._chunk_starts: np.ndarray = np.cumsum([0, *sizes[:-1]], dtype=np.intp)
        self._sentence_terms = [[set(self._tokenize(s)) for s in p.sentences()] for p in passages]
        self._question_words = set(self._tokenize(QUESTION_WORDS))
        self._overview_words = set(self._tokenize(OVERVIEW_WORDS))
        self._first_sections = np.array(
            [i == 0 or passages[i - 1].policy != p.policy for i, p in enumerate(passages)], dtype=np.float64
        )
        self._topic_terms = [[tuple(self._tokenize(t)) for t in p.topics] for p in passages]
        self._names = [set(self._tokenize(p.policy_title)) for p in passages]
        self._period_sentences = [[bool(STATES_PERIOD.search(s)) for s in p.sentences()] for p in passages]
        self._states_period = np.array([any(flags) for flags in self._period_sentences], dtype=np.float64)

    @classmethod
    def build(
        cls,
        passages: Sequence[Passage],
        encoder: TextEncoder | None = None,
        cache: EmbeddingCache | None = None,
        min_dense: float = MIN_DENSE,
    ) -> PolicyIndex:
        """The index of `passages`; sentence vectors come from `cache` where it has them."""
        passages = list(passages)
        if not passages:
            raise ValueError("no policy passages to index")
        if len({p.id for p in passages}) != len(passages):
            raise ValueError("policy passage ids must be unique")
        tokenizer = Tokenizer()
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        bm25.index([tokenizer(p.index_text()) or ["__empty__"] for p in passages], show_progress=False)
        vectors = None
        if encoder is not None:
            texts = [c for p in passages for c in p.chunks()]
            keyed = {chunk_key(t): t for t in texts}
            found, _ = embed_with_cache(encoder, cache, keyed)
            vectors = np.stack([np.asarray(found[chunk_key(t)], dtype=np.float32) for t in texts])
        return cls(passages, bm25, encoder, vectors, min_dense)

    @classmethod
    def load(
        cls, directory: str | Path, encoder: TextEncoder | None = None, cache: EmbeddingCache | None = None
    ) -> PolicyIndex:
        """The policies in `directory` (validated: a bad file raises PolicyFileError naming it), indexed."""
        return cls.build(load_passages(directory), encoder, cache)

    def search(self, question: str, k: int = 3, intent: str | None = None) -> list[PolicyHit]:
        """The `k` best passages, best first: lexical (scaled to [0, 1]) and dense cosine fused, plus a bonus for
        the policies that list `intent` or whose topics the question names (and for first sections, when the question
        asks about a policy as a whole; for passages that state a period, when it asks how long); each with its
        sentences scored against the question."""
        n = len(self.passages)
        if n == 0 or not question.strip():
            return []
        terms = self._tokenize(question)
        vocab = self._bm25.vocab_dict
        # Question words say what kind of answer is wanted, not what it is about ("how" is not "How to start a
        # return"): only the other words are matched.
        words = [t for t in terms if t in vocab and t not in self._question_words]
        raw = np.asarray(self._bm25.get_scores(words), dtype=np.float64) if words else np.zeros(n)
        top = float(raw.max()) if raw.size else 0.0
        lex = raw / top if top > 0 else raw
        sims: np.ndarray | None = None
        dense: np.ndarray | None = None
        if self.encoder is not None and self.vectors is not None:
            sims = (self.vectors @ self.encoder.embed_query(question).astype(np.float32)).astype(np.float64)
            dense = np.maximum.reduceat(sims, self._chunk_starts)  # a passage is as close as its closest sentence
            score = LEXICAL_WEIGHT * lex + DENSE_WEIGHT * dense
        else:
            score = lex.copy()
        if self._overview_words & set(terms):
            score += OVERVIEW_BONUS * self._first_sections
        elif words:
            named = np.array([set(words) <= names for names in self._names], dtype=np.float64)
            score += OVERVIEW_BONUS * self._first_sections * named
        if intent:
            score += INTENT_BONUS * np.array([intent in p.intents for p in self.passages], dtype=np.float64)
        topical = self._names_topic(terms)
        score += TOPIC_BONUS * topical
        period = bool(ASKS_PERIOD.search(question) or STATES_PERIOD.search(question))
        if period:
            score += PERIOD_BONUS * self._states_period
        order = np.argsort(-score, kind="stable")[:k]
        hits = []
        for i in order:
            if dense is None and raw[i] <= 0:
                continue
            if dense is None:
                relevant = bool(raw[i] > 0)
            else:
                floor = MIN_TOPIC_DENSE if topical[i] else self.min_dense
                relevant = bool(dense[i] >= min(floor, self.min_dense))
            hits.append(
                PolicyHit(
                    passage=self.passages[i],
                    score=float(score[i]),
                    lexical=float(lex[i]),
                    dense=float(dense[i]) if dense is not None else None,
                    relevant=relevant,
                    sentences=self._sentence_scores(int(i), set(words), sims, period),
                )
            )
        return hits

    def _names_topic(self, terms: list[str]) -> np.ndarray:
        """1.0 for each passage whose policy's topics the question names (a topic's words in a row), else 0.0."""
        seq = tuple(terms)

        def named(topic: tuple[str, ...]) -> bool:
            return bool(topic) and any(seq[j : j + len(topic)] == topic for j in range(len(seq) - len(topic) + 1))

        return np.array([any(named(t) for t in topics) for topics in self._topic_terms], dtype=np.float64)

    def _sentence_scores(
        self, i: int, terms: set[str], sims: np.ndarray | None, period: bool = False
    ) -> list[SentenceScore]:
        """Each sentence of passage `i`: its cosine to the question (when dense), plus the share of the question's
        words it holds, plus the lead sentence's bonus (and the period's, for a sentence stating one when the
        question asks how long)."""
        passage = self.passages[i]
        start = int(self._chunk_starts[i])
        out = []
        for j, (text, words) in enumerate(zip(passage.sentences(), self._sentence_terms[i], strict=True)):
            overlap = len(terms & words) / len(terms) if terms else 0.0
            score = LEXICAL_WEIGHT * overlap + (LEAD_BONUS if j == 0 else 0.0)
            if period and self._period_sentences[i][j]:
                score += PERIOD_BONUS
            if sims is not None:
                score += DENSE_WEIGHT * float(sims[start + j])
            out.append(SentenceScore(text=text, score=round(score, 4)))
        return out
