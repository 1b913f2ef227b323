"""Ratings of answers: a caller who may read a session rates its turns; agents (and the owner) list them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from assistant.chat_service import ChatService
from assistant.errors import TurnNotFound, Unavailable
from assistant.principal import Principal
from assistant.schemas import FeedbackIn
from assistant.stores.feedback import Feedback, FeedbackStore


class FeedbackService:
    """Stores feedback in the shared records (SHOP_SESSION_STORE_URL), so every replica and evaluation sees it."""

    def __init__(self, chat: ChatService, store: FeedbackStore | None) -> None:
        self.chat = chat
        self.store = store

    def _store(self) -> FeedbackStore:
        if self.store is None:
            raise Unavailable("the feedback store is not configured")
        return self.store

    async def give(self, principal: Principal, body: FeedbackIn) -> Feedback:
        """Rate a turn of a session the caller may read (another shopper's reads as absent); replaces an earlier
        rating of the same turn."""
        store = self._store()
        session = await self.chat.session_for(principal, body.session_id)
        if not any(t.turn_id == body.turn_id for t in session.turns):
            raise TurnNotFound(f"no turn {body.turn_id!r} in session {body.session_id!r}")
        feedback = Feedback(
            session_id=session.session_id,
            turn_id=body.turn_id,
            rating=body.rating,
            comment=body.comment,
            shopper_id=session.shopper_id,
            given_by=principal.speaker,
            key_id=principal.key_id,
            at=datetime.now(UTC),
        )
        await asyncio.to_thread(store.give, feedback)
        return feedback

    async def for_session(self, principal: Principal, session_id: str) -> list[Feedback]:
        store = self._store()
        session = await self.chat.session_for(principal, session_id)
        return await asyncio.to_thread(store.for_session, session.session_id)
