"""The fuzz part's Schemathesis hooks restate the schema's event-id pattern: it must be the service's."""

from assistant.schemas import EVENT_ID_PATTERN
from eval.reliability.parts.fuzz_hooks import EVENT_ID


def test_the_hooks_event_id_is_the_schemas() -> None:
    assert EVENT_ID.pattern == EVENT_ID_PATTERN
    assert EVENT_ID.match("0" * 32 + ":0") and not EVENT_ID.match("0")
