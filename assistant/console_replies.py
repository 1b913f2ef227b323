"""The agent console's canned replies: a YAML list of `title` + `text` (`SHOP_CONSOLE_REPLIES_PATH`; the shipped
`console_replies.yaml` by default), read once per path and validated."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class CannedReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=60, description="what the agent picks")
    text: str = Field(min_length=1, max_length=2000, description="what fills the reply box")


class CannedReplies(BaseModel):
    replies: list[CannedReply]


class RepliesFileError(ValueError):
    """A replies file that does not load; the message names the file and the problem."""


@lru_cache(maxsize=4)
def load_replies(path: Path) -> CannedReplies:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        replies = TypeAdapter(list[CannedReply]).validate_python(raw)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise RepliesFileError(f"{path}: {e}") from None
    titles = [r.title for r in replies]
    if len(set(titles)) != len(titles):
        raise RepliesFileError(f"{path}: every title must be unique")
    return CannedReplies(replies=replies)
