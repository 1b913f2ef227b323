"""README's configuration table is the one generated from the settings classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import settings_doc
from assistant.settings import AssistantSettings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_holds_the_generated_settings_table() -> None:
    current = settings_doc.current_table(README.read_text(encoding="utf-8"))
    assert current == settings_doc.table(), (
        f"README's settings table is out of date: run `{settings_doc.REGENERATE}` and commit README.md"
    )


def test_every_setting_says_what_it_does() -> None:
    missing = [name for name, field in AssistantSettings.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"settings without a description: {missing}"


def test_the_table_lists_every_setting_by_its_environment_variable() -> None:
    listed = [env for env, _, _ in settings_doc.rows()]
    assert listed == [f"SHOP_{name.upper()}" for name in AssistantSettings.model_fields]
    assert "SHOP_DATA_DIR" in listed and "SHOP_SESSION_STORE_URL" in listed  # retrieval's and the assistant's


def test_the_table_does_not_depend_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_PORT", "9999")
    monkeypatch.setenv("SHOP_LLM_API_KEY", "sk-live-should-not-appear")
    text = settings_doc.table()
    assert "9999" not in text and "sk-live" not in text
    assert str(settings_doc.REPO_ROOT) not in text
    assert "`../shared/data/retail-demo-store/products.yaml`" in text


def test_secrets_show_no_default() -> None:
    defaults = {env: default for env, default, _ in settings_doc.rows()}
    assert defaults["SHOP_LLM_API_KEY"] == defaults["SHOP_API_KEYS"] == settings_doc.SECRET_SHOWN
    assert "EMPTY" not in settings_doc.table()


def test_write_replaces_only_the_table(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(f"# Title\n\nbefore\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\nafter\n", encoding="utf-8")
    assert settings_doc.main(["--check", str(doc)]) == 1
    assert settings_doc.main(["--write", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{settings_doc.END}\nafter\n")
    assert settings_doc.current_table(text) == settings_doc.table()
    assert settings_doc.main(["--check", str(doc)]) == 0


def test_write_refuses_a_file_without_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text("# Title\n", encoding="utf-8")
    assert settings_doc.main(["--write", str(doc)]) == 2
    assert doc.read_text(encoding="utf-8") == "# Title\n"


def test_an_empty_api_keys_variable_means_the_demo_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHOP_API_KEYS="" is documented as empty (the demo keys unless SHOP_DEMO_KEYS=false); pydantic-settings read
    it as JSON before the field's own parsing and stopped the start with a SettingsError."""
    monkeypatch.chdir(Path(__file__).parent)  # no stray .env
    monkeypatch.setenv("SHOP_API_KEYS", "")
    assert "demo-agent-key" in AssistantSettings().keys
    monkeypatch.setenv("SHOP_DEMO_KEYS", "false")
    assert AssistantSettings().keys == {}
    monkeypatch.setenv("SHOP_API_KEYS", '{"k-agent": {"role": "agent"}}')
    assert AssistantSettings().keys["k-agent"].role == "agent"
    monkeypatch.setenv("SHOP_API_KEYS", "{not json")
    with pytest.raises(ValueError, match="SHOP_API_KEYS is not valid JSON"):
        AssistantSettings()


@pytest.mark.parametrize("variable", ["SHOP_CORS_ORIGINS", "SHOP_AGENT_ORIGINS"])
def test_origin_lists_read_empty_json_or_commas(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """Empty was a SettingsError at start, like SHOP_API_KEYS; a comma-separated list is what operators write."""
    monkeypatch.chdir(Path(__file__).parent)
    field = variable.removeprefix("SHOP_").lower()
    monkeypatch.setenv(variable, "")
    assert getattr(AssistantSettings(), field) == []
    monkeypatch.setenv(variable, '["https://a.example", "https://b.example:8443"]')
    assert getattr(AssistantSettings(), field) == ["https://a.example", "https://b.example:8443"]
    monkeypatch.setenv(variable, " https://a.example, https://b.example:8443 ")
    assert getattr(AssistantSettings(), field) == ["https://a.example", "https://b.example:8443"]
    monkeypatch.setenv(variable, '["https://a.example"')
    with pytest.raises(ValueError, match=f"{variable} is not a valid JSON list"):
        AssistantSettings()


def test_agent_origins_still_need_scheme_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    monkeypatch.setenv("SHOP_AGENT_ORIGINS", "https://console.example/path")
    with pytest.raises(ValueError, match="write scheme://host"):
        AssistantSettings()
