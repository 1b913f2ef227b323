"""Summaries of older turns: once enough completed turns fall outside the verbatim history window, the model
summarises them in the background; a summary is stored only if the grounding check finds nothing unbacked in it."""

from __future__ import annotations

import asyncio
import logging

from assistant.dialogue.context import summarize_turns
from assistant.errors import Unavailable
from assistant.grounding import Facts, ground
from assistant.llm.base import LLM, ChatMessage, LLMError
from assistant.prompts import PromptRegistry
from assistant.sessions.base import SessionStore
from assistant.sessions.models import Session, Turn

log = logging.getLogger(__name__)


class Summarizer:
    """Keeps each session's summary covering the turns its history window leaves out."""

    def __init__(
        self,
        *,
        llm: LLM,
        sessions: SessionStore,
        prompts: PromptRegistry,
        history_turns: int = 2,
        summarize_after: int = 4,
    ) -> None:
        self.llm = llm
        self.sessions = sessions
        self.prompts = prompts
        self.history_turns = history_turns
        self.summarize_after = summarize_after
        self._background: set[asyncio.Task[None]] = set()

    def unsummarised(self, session: Session) -> list[Turn]:
        """The completed turns outside the history window the summary should cover, once enough piled up."""
        done = session.completed_turns()
        older = done[: -self.history_turns] if self.history_turns else done
        covered = session.summary_through if session.summary_through is not None else -1
        if len(older) < self.summarize_after or older[-1].index - covered < self.summarize_after:
            return []
        return older

    def after_turn(self, session: Session, turn: Turn) -> None:
        """Start a background summary when the session (as this process knows it, plus `turn`) is due one; the
        session is read again only then."""
        if self.unsummarised(session.model_copy(update={"turns": [*session.turns, turn]})):
            task = asyncio.create_task(self.summarize(session.session_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def summarize(self, session_id: str) -> None:
        """Summarise the session's older turns with the model and store the summary (not when the store is down:
        a later turn asks again)."""
        try:
            await self._summarize(session_id)
        except Unavailable as e:
            log.info("no summary for %s: %s", session_id, e)

    async def _summarize(self, session_id: str) -> None:
        session = await self.sessions.get_session(session_id)
        older = self.unsummarised(session) if session is not None else []
        if not older:
            return
        prompt = self.prompts.get("summary")
        transcript = summarize_turns(older, max_message_chars=160)
        messages = [ChatMessage(role=r, content=c) for r, c in prompt.messages(transcript=transcript)]  # type: ignore[arg-type]
        text = ""
        try:
            async for delta in self.llm.stream_chat(messages, max_tokens=prompt.max_tokens or 80, temperature=0.0):
                text += delta
        except LLMError as e:
            log.info("no summary for %s: %s", session_id, e)
            return
        grounded, withheld = ground(text, Facts(names={transcript}))
        if grounded.strip() and not withheld:
            await self.sessions.set_summary(session_id, grounded.strip(), through_index=older[-1].index)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
