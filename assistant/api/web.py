"""The front end's routes: `GET /` (the demo store page), `GET /widget.js` and the widget's modules and CSS, `GET
/console` (the agent console) and its modules.

The files live in `web/` beside `assistant/` and are served as they are: plain JavaScript modules and CSS, no build.
Every file is read once, gzipped once and served with a strong ETag and `Cache-Control: no-cache`: a browser keeps
its copy and revalidates it (a 304 without a body), so a store page never runs a mix of old and new modules after
an upgrade, which a max-age on unversioned module URLs would allow.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assistant.api.errors import ApiError
from assistant.services import Services
from assistant.settings import DEMO_KEYS

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
FOLDERS = ("widget", "shared", "store", "console")  # the subfolders of web/ that are served, one route each
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The demo page's own policy: its scripts, styles and API calls come from this server only.
DEMO_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The console's own policy: as the demo page's, and no form posts anywhere (the page holds an agent key).
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DEMO_WIDGET_KEY = "demo-widget-key"  # for a server without publishable keys (visitor tokens)

router = APIRouter(tags=["web"], include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str


def make_asset(body: bytes, media_type: str) -> Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), etag, media_type)


@cache
def load_asset(relative: str) -> Asset:
    """A file under web/ (a served folder, a served type, no way out of the folder), read and gzipped once."""
    path = (WEB_DIR / relative).resolve()
    media_type = TYPES.get(path.suffix)
    if media_type is None or not path.is_relative_to(WEB_DIR) or not path.is_file():
        raise ApiError(404, "not_found", f"no such file: /{relative}")
    return make_asset(path.read_bytes(), media_type)


def respond(request: Request, asset: Asset, extra: dict[str, str] | None = None) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def page_widget_key(request: Request) -> str:
    """The key the demo page embeds: a publishable key (public by design; `pk_demo` among the demo keys), else, on a
    server without them, the documented demo widget key. Never another API key: the page is public."""
    services: Services | None = request.app.state.services
    keys = services.settings.keys if services is not None else {}
    publishable = next((k for k, v in keys.items() if v.role == "publishable"), None)
    if publishable is not None:
        return publishable
    return DEMO_WIDGET_KEY if DEMO_WIDGET_KEY in keys and DEMO_WIDGET_KEY in DEMO_KEYS else ""


def store_categories(services: Services | None) -> list[str]:
    if services is None:
        return []
    return services.engine.lexical.categories()


@router.get("/")
async def store_page(request: Request) -> Response:
    """The demo store: a header, search and a category menu over the catalog, a product grid, and the widget
    embedded by one tag as a store would embed it."""
    raw = (WEB_DIR / "store" / "index.html").read_text(encoding="utf-8")
    options = "".join(
        f'<option value="{html.escape(c)}">{html.escape(c.capitalize())}</option>'
        for c in store_categories(request.app.state.services)
    )
    fills = {"categories": options, "widget_key": html.escape(page_widget_key(request))}
    # One pass: a category named "{{widget_key}}" is shown as that text, not filled in as the template's own marker.
    body = re.sub(r"\{\{(categories|widget_key)\}\}", lambda m: fills[m.group(1)], raw)
    asset = make_asset(body.encode(), "text/html; charset=utf-8")
    return respond(request, asset, {"Content-Security-Policy": DEMO_CSP, "Referrer-Policy": "same-origin"})


@router.get("/console")
async def console_page(request: Request) -> Response:
    """The agent console: sign in with an agent key, the queue, a conversation live, take over, reply, hand back,
    each turn's trace. Same-origin with the API, so its agent key is accepted (see Settings.console_origins)."""
    asset = load_page("console/index.html")
    return respond(request, asset, {"Content-Security-Policy": CONSOLE_CSP, "Referrer-Policy": "no-referrer"})


@cache
def load_page(relative: str) -> Asset:
    """An HTML page under web/ served as it is (no fill-ins), read once."""
    return make_asset((WEB_DIR / relative).read_bytes(), "text/html; charset=utf-8")


@router.get("/widget.js")
async def widget_js(request: Request) -> Response:
    """The one file a store's page loads; it imports the rest."""
    return respond(request, load_asset("widget.js"), {"Access-Control-Allow-Origin": "*"})


@router.get("/widget.css")
async def widget_css(request: Request) -> Response:
    return respond(request, load_asset("widget.css"), {"Access-Control-Allow-Origin": "*"})


def file_route(folder: str) -> Callable[[Request, str], Awaitable[Response]]:
    async def web_file(request: Request, name: str) -> Response:
        """A module, stylesheet or image of the widget (widget/, shared/), the demo page (store/) or the console."""
        # Module scripts loaded by a store's page on another origin are fetched in CORS mode.
        return respond(request, load_asset(f"{folder}/{name}"), {"Access-Control-Allow-Origin": "*"})

    return web_file


for _folder in FOLDERS:
    router.add_api_route(f"/{_folder}/{{name}}", file_route(_folder), methods=["GET"], name=f"web_{_folder}")
