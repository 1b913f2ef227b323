"""Prompts are files, validated at load; every prompt renders with its variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.prompts import REQUIRED_PROMPTS, PromptError, PromptRegistry


def test_every_shipped_prompt_loads_and_renders() -> None:
    registry = PromptRegistry.load(required=REQUIRED_PROMPTS)
    for name in registry.names():
        prompt = registry.get(name)
        messages = prompt.messages(**{v: f"<{v}>" for v in prompt.variables})
        assert [r for r, _ in messages[:2]] == ["system", "user"] and all(c.strip() for _, c in messages)
        text = "".join(c for _, c in messages)
        for v in prompt.variables:
            assert f"<{v}>" in text


def test_a_missing_variable_raises() -> None:
    prompt = PromptRegistry.load().get("answer")
    with pytest.raises(PromptError, match="facts"):
        prompt.render(message="hi")


def test_undeclared_placeholders_fail_at_load(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\ndescription: d\nvariables: [a]\nsystem: '{a} {b}'\nuser: u\n")
    with pytest.raises(PromptError, match="not declared"):
        PromptRegistry.load(tmp_path)


def test_a_missing_required_prompt_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="answer.yaml"):
        PromptRegistry.load(tmp_path, required=("answer",))


@pytest.mark.parametrize("start", ["' The'", "'The '", "'The {a}'", "''"])
def test_a_reply_start_with_spaces_braces_or_nothing_fails_at_load(tmp_path: Path, start: str) -> None:
    (tmp_path / "bad.yaml").write_text(f"name: bad\ndescription: d\nsystem: s\nuser: u\nreply_start: {start}\n")
    with pytest.raises(PromptError, match="reply_start"):
        PromptRegistry.load(tmp_path)


def test_the_answer_prompt_starts_its_reply() -> None:
    assert PromptRegistry.load().get("answer").reply_start == "The"
