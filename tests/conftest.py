"""Shared test settings: where the read-only shared data lives."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("SHOP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
