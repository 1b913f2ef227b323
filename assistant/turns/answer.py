"""Writing the answer: the reply's prompt and history go to the model, its text streams through the grounding
filter, the quality gate and the limit guard, and what passes goes out in pieces; a fixed text built from the
records is said instead when there is no prompt or the model's text is unusable.

The model call goes in the turn's trace (`answer_model`): the exact messages, when its first text came and when
the first piece left the filters (ms from the request), and the stream's finish reason.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from assistant.dialogue.context import approx_tokens, build_history
from assistant.grounding import Facts, GroundingFilter, LimitGuard, QualityGate
from assistant.llm.base import LLM, ChatMessage, LLMError, LLMUnavailable, StreamInfo
from assistant.metrics import Metrics
from assistant.planning.plan import Reply
from assistant.prompts import PromptRegistry
from assistant.schemas import ErrorBody
from assistant.sessions.models import Session
from assistant.trace import Trace

log = logging.getLogger(__name__)
WORDS = re.compile(r"\S+\s*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
CONTENT_WORD = re.compile(r"[a-z0-9$.]{4,}")


def repeats(sentence: str, said: str) -> bool:
    """Whether most of a sentence's content words were already said."""
    words = set(CONTENT_WORD.findall(sentence.lower()))
    return bool(words) and len(words & set(CONTENT_WORD.findall(said.lower()))) >= 0.6 * len(words)


class AnswerWriter:
    """Writes replies with one model; `stream(reply, session, trace)` is one answer."""

    def __init__(
        self,
        *,
        llm: LLM,
        prompts: PromptRegistry,
        metrics: Metrics,
        answer_max_tokens: int,
        context_tokens: int = 1200,
        history_turns: int = 2,
    ) -> None:
        self.llm = llm
        self.prompts = prompts
        self.metrics = metrics
        self.answer_max_tokens = answer_max_tokens
        self.context_tokens = context_tokens
        self.history_turns = history_turns

    def stream(self, reply: Reply, session: Session, trace: Trace) -> AnswerStream:
        return AnswerStream(self, reply, session, trace)

    def messages(self, reply: Reply, session: Session) -> tuple[list[ChatMessage], int, str]:
        """(the model's messages, its token limit, the reply's start) for a reply with a prompt."""
        assert reply.prompt is not None
        prompt = self.prompts.get(reply.prompt)
        rendered = prompt.messages(**reply.variables)
        max_tokens = prompt.max_tokens or self.answer_max_tokens
        # The context budget: what is left of it after the prompt and the answer goes to history.
        budget = self.context_tokens - max_tokens - sum(approx_tokens(c) + 4 for _, c in rendered)
        history = (
            build_history(session, budget, max_verbatim_turns=self.history_turns, include_product_ids=False)
            if prompt.history
            else []
        )
        # The reply's start (a partial assistant message the model continues) goes out with the model's first
        # words, never before them: it steers the small model, and what follows it is a whole word sooner.
        start = prompt.reply_start or ""
        messages = [
            ChatMessage(role=role, content=content)  # type: ignore[arg-type]
            for role, content in [rendered[0], *history, *rendered[1:], *([("assistant", start)] if start else [])]
        ]
        return messages, max_tokens, start


class AnswerStream:
    """`pieces()` are the answer's text; afterwards `withheld` lists what the checks held back and `error` is
    set when the model was unavailable (the turn then ends failed)."""

    def __init__(self, writer: AnswerWriter, reply: Reply, session: Session, trace: Trace) -> None:
        self.writer, self.reply, self.session, self.trace = writer, reply, session, trace
        self.withheld: list[str] = []
        self.error: ErrorBody | None = None

    async def pieces(self) -> AsyncGenerator[str]:
        """The answer's text pieces, in order (close it to close the model's stream)."""
        reply = self.reply
        if reply.lead:
            for m in WORDS.finditer(reply.lead):
                yield m.group(0)
            if reply.prompt is not None:
                extra = await self._one_sentence()
                for i, m in enumerate(WORDS.finditer(extra)):
                    yield (" " if i == 0 else "") + m.group(0)
            return
        if reply.prompt is None:
            for m in WORDS.finditer(reply.fixed or ""):
                yield m.group(0)
            return
        produced = ""
        async with aclosing(self._model()) as model:
            async for piece in model:
                produced += piece
                yield piece
        if self.error is not None:
            return
        if self._unusable(produced) and reply.fixed:
            # Nothing usable came from the model: say the catalog facts plainly (on a new line after any words
            # that went out before the model's text turned out unusable).
            if produced.strip():
                yield "\n"
            for m in WORDS.finditer(reply.fixed):
                yield m.group(0)

    async def _one_sentence(self) -> str:
        """The model's first sentence after a lead, through the filters, or "" when it is unusable or only
        repeats the lead (the model's stream is closed as soon as the sentence ends)."""
        text = ""
        async with aclosing(self._model()) as model:
            async for piece in model:
                text += piece
                if SENTENCE_END.search(text):
                    break
        if self.error is not None:
            return ""
        sentence = SENTENCE_END.split(text.strip(), maxsplit=1)[0].strip()
        if not sentence or self._unusable(sentence) or not sentence.endswith((".", "!", "?")):
            return ""
        if repeats(sentence, self.reply.lead or ""):
            self.withheld.append(f"model sentence repeats the facts said: {sentence!r}")
            return ""
        return sentence

    async def _model(self) -> AsyncGenerator[str]:
        """The model's text through the filters; sets `withheld`, `error` and what `_unusable` reads."""
        writer = self.writer
        messages, max_tokens, start = writer.messages(self.reply, self.session)
        facts = self.reply.facts or Facts()
        if not facts.message and self.reply.variables.get("message"):
            # The shopper's words: their numbers back the answer's, and an answer that echoes them is dropped.
            facts = replace(facts, message=str(self.reply.variables["message"]))
        if self.reply.prompt is not None and not facts.instructions:
            # The prompt's own words: an answer that repeats them is dropped (the system prompt is not the shopper's).
            facts = replace(facts, instructions=writer.prompts.get(self.reply.prompt).instructions())
        self._grounding = grounding = GroundingFilter(facts)
        self._gate = gate = QualityGate()
        refusal = QualityGate()  # the model's own first words: a refusal shows there before its sentence is judged
        limit = LimitGuard(max_tokens)
        info = StreamInfo()
        model_text, tokens = "", 0
        call: dict[str, Any] = {
            "prompt": self.reply.prompt,
            "messages": [m.model_dump(exclude_none=True) for m in messages],
            "reply_start": start or None,
            "max_tokens": max_tokens,
            "first_text_ms": None,
            "first_piece_ms": None,
            "finish_reason": None,
        }
        entry = self.trace.note("answer_model", data=call)
        sent = time.perf_counter()
        stream = writer.llm.stream_chat(messages, max_tokens=max_tokens, temperature=0.0, info=info)
        try:
            async for delta in stream:
                if call["first_text_ms"] is None and delta:
                    call["first_text_ms"] = _ms_since(sent)
                model_text += delta
                tokens += 1  # vLLM streams a chunk per token (or fewer)
                if start:  # held until the model has said a word (whitespace alone may be all it says)
                    if not model_text.strip():
                        continue
                    delta, start = start + model_text, ""
                refusal.feed(delta)
                if refusal.rejected:
                    gate.rejected = refusal.rejected
                    break
                piece = limit.feed(gate.feed(grounding.feed(delta)), tokens)
                if piece:
                    call["first_piece_ms"] = call["first_piece_ms"] or _ms_since(sent)
                    yield piece
                if gate.rejected or gate.looping or grounding.looping:
                    break
            else:
                call["finish_reason"] = info.finish_reason
                cut = info.finish_reason == "length"
                piece = gate.finish(grounding.finish(cut))
                piece = "" if gate.rejected else limit.feed(piece, tokens) + limit.finish(cut)
                if piece:
                    call["first_piece_ms"] = call["first_piece_ms"] or _ms_since(sent)
                    yield piece
        except LLMUnavailable as e:
            entry.update(ok=False, error=f"{type(e).__name__}: {e}")
            log.warning("model unavailable: %s", e)
            writer.metrics.llm_errors.inc()
            self.error = ErrorBody(code="llm_unavailable", message=f"{e}")
            return
        except LLMError as e:
            entry.update(ok=False, error=f"{type(e).__name__}: {e}")
            log.warning("model error: %s", e)
            writer.metrics.llm_errors.inc()
        finally:
            await _aclose(stream)
        self.withheld.extend(grounding.withheld)
        call["repaired"] = grounding.repaired  # kept sentences' repairs (wrong price, stock); the rest was dropped
        if limit.dropped.strip():
            self.withheld.append(f"cut at the {max_tokens}-token limit: {limit.dropped.strip()!r}")
        if gate.rejected:
            self.withheld.append(f"model text rejected: {gate.rejected}")

    def _unusable(self, produced: str) -> bool:
        grounding, gate = self._grounding, self._gate
        return not produced.strip() or bool(gate.rejected) or bool(grounding.cut and not grounding.kept)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


async def _aclose(stream: object) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
