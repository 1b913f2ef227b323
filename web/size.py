"""`python -m web.size`: the widget's JS + CSS, each file gzipped as the server sends it, against the 30 KB budget."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
BUDGET = 30 * 1024  # bytes gzipped, all the widget's files together


def widget_files() -> list[Path]:
    """Every file a page that embeds the widget downloads: the loader, its modules and its stylesheet."""
    files = [WEB / "widget.js", WEB / "widget.css"]
    for folder in ("widget", "shared"):
        files += sorted((WEB / folder).glob("*.js"))
    return files


def sizes() -> list[tuple[str, int, int]]:
    """(path, bytes, gzipped bytes) of each widget file; gzip level 9, as assistant/api/web.py serves them."""
    return [
        (str(f.relative_to(WEB)), len(raw := f.read_bytes()), len(gzip.compress(raw, compresslevel=9, mtime=0)))
        for f in widget_files()
    ]


def main() -> int:
    rows = sizes()
    for name, raw, gz in rows:
        print(f"{name:28} {raw:7,d} B  {gz:6,d} B gzipped")
    total_raw, total_gz = sum(r[1] for r in rows), sum(r[2] for r in rows)
    ok = total_gz <= BUDGET
    print(
        f"widget: {len(rows)} files, {total_raw / 1024:.1f} KB, {total_gz / 1024:.1f} KB gzipped "
        f"(budget {BUDGET / 1024:.0f} KB gzipped: {'ok' if ok else 'OVER'})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
