"""Prompts are files: prompts/<name>.yaml validated at start-up, rendered by name with every variable given."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
REQUIRED_PROMPTS = ("answer", "product", "policy", "smalltalk", "summary", "slots", "parse", "handoff_summary")


class PromptError(ValueError):
    """A prompt file is invalid, or a render is missing variables."""


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class Prompt(BaseModel):
    """A system + user template pair, optionally followed by more turns (small models answer a
    follow-up question about facts they "said" better than facts in the system prompt);
    `{name}` placeholders, `{{`/`}}` for literal braces."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    variables: list[str] = Field(default_factory=list)
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)
    turns: list[Turn] = Field(default_factory=list)
    max_tokens: int | None = Field(default=None, ge=1, le=2048)
    history: bool = Field(
        default=True,
        description="put the session's recent turns before the prompt (within the context budget); false for "
        "prompts that must hold only the retrieved facts",
    )
    reply_start: str | None = Field(
        default=None,
        min_length=1,
        description="the reply's first words, given to the model as a partial assistant message that it continues "
        "(plain text: no placeholders, no surrounding spaces)",
    )

    @model_validator(mode="after")
    def _check_variables(self) -> Prompt:
        try:
            used = _fields(self.system) | _fields(self.user)
            for turn in self.turns:
                used |= _fields(turn.content)
        except ValueError as e:
            raise ValueError(f"bad placeholder syntax: {e}") from e
        declared = set(self.variables)
        if used - declared:
            raise ValueError(f"placeholders not declared in variables: {sorted(used - declared)}")
        if declared - used:
            raise ValueError(f"declared variables never used: {sorted(declared - used)}")
        start = self.reply_start
        if start is not None and (start != start.strip() or "{" in start or "}" in start):
            raise ValueError(f"reply_start {start!r} must be plain text without surrounding spaces or braces")
        return self

    def render(self, **values: object) -> tuple[str, str]:
        """(system, user) with every declared variable filled; a missing one raises PromptError."""
        missing = set(self.variables) - values.keys()
        if missing:
            raise PromptError(f"prompt {self.name!r} is missing variables {sorted(missing)}")
        return self.system.format(**values), self.user.format(**values)

    def instructions(self) -> str:
        """The prompt's own words to the model (system, and the user turns' fixed text, each placeholder a line
        break): an answer that repeats them shows the shopper how the assistant is instructed."""
        texts = [self.system, self.user, *(t.content for t in self.turns if t.role == "user")]
        return "\n".join(re.sub(r"\{[a-z_]+\}", "\n", t) for t in texts)

    def messages(self, **values: object) -> list[tuple[str, str]]:
        """[(role, content)]: system, user, then the extra turns, all rendered (not the reply's start: the caller
        appends it after any history it puts in)."""
        system, user = self.render(**values)
        return [("system", system), ("user", user), *((t.role, t.content.format(**values)) for t in self.turns)]


class PromptRegistry:
    """All prompts of a directory, loaded and validated once."""

    def __init__(self, prompts: dict[str, Prompt]) -> None:
        self._prompts = prompts

    @classmethod
    def load(cls, directory: Path = PROMPTS_DIR, required: tuple[str, ...] = ()) -> PromptRegistry:
        prompts: dict[str, Prompt] = {}
        for path in sorted(directory.glob("*.yaml")):
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
                prompt = Prompt.model_validate(raw)
            except (yaml.YAMLError, ValidationError, UnicodeDecodeError) as e:
                raise PromptError(f"{path}: {e}") from e
            if prompt.name != path.stem:
                raise PromptError(f"{path}: name {prompt.name!r} does not match the file name")
            prompts[prompt.name] = prompt
        missing = [n for n in required if n not in prompts]
        if missing:
            raise PromptError(f"{directory}: missing prompt files {[n + '.yaml' for n in missing]}")
        return cls(prompts)

    def get(self, name: str) -> Prompt:
        try:
            return self._prompts[name]
        except KeyError:
            raise PromptError(f"no prompt named {name!r}; have {sorted(self._prompts)}") from None

    def names(self) -> list[str]:
        return sorted(self._prompts)
