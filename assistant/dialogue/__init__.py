"""Dialogue: turn handling, context budget and conversation state."""
