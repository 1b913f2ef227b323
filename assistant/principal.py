"""Who is calling: a widget acts for its one shopper; an agent reads any session and names the shopper it acts for.

How a caller is recognised (a widget or agent key, or a visitor token, which is a widget for its own visitor) is
the HTTP layer's business; what a caller may do is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assistant.errors import Forbidden, InvalidRequest
from assistant.settings import Role


@dataclass(frozen=True)
class Principal:
    """The caller's role and, for a widget, the shopper it acts for; `key_id` names the credential (for limits)."""

    key_id: str
    role: Role
    shopper_id: str | None

    def can_read(self, owner: str) -> bool:
        return self.role == "agent" or self.shopper_id == owner

    def shopper_for(self, requested: str | None) -> str:
        """The shopper a request acts for: a widget's own; an agent names one."""
        if self.role == "widget":
            if requested is not None and requested != self.shopper_id:
                raise Forbidden("a widget key acts only for its own shopper")
            assert self.shopper_id is not None
            return self.shopper_id
        if not requested:
            raise InvalidRequest("an agent key must name the shopper_id to act for")
        return requested

    @property
    def speaker(self) -> Literal["shopper", "agent"]:
        """Who a turn's tools act as: the shopper themselves, or an agent on their behalf."""
        return "agent" if self.role == "agent" else "shopper"
