"""The operator console: a static page (live and recent calls, a call's timeline, hang-up)
that talks to the admin API with the admin token. No token set, no console (404)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from agent.service.admin import not_found

CONSOLE_DIR = Path(__file__).with_name("static")
CONSOLE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    # The softphone (/console/phone): its page, and the audio path as plain modules.
    "phone.html": "text/html; charset=utf-8",
    "phone.js": "text/javascript; charset=utf-8",
    "timeline.js": "text/javascript; charset=utf-8",
    "signin.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "mulaw.js": "text/javascript; charset=utf-8",
    "resampler.js": "text/javascript; charset=utf-8",
    "playout.js": "text/javascript; charset=utf-8",
    "media-client.js": "text/javascript; charset=utf-8",
    "worklets.js": "text/javascript; charset=utf-8",
}
PAGES = {"": "index.html", "phone": "phone.html"}
# The console only ever talks to its own origin; nothing inline, nothing from elsewhere.
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

def console_routes(token: str, stream_origin: str | None = None) -> list[BaseRoute]:
    """The console's static files. The pages hold no secret; their API calls need the token.

    `stream_origin` (e.g. "wss://agent.example.com"): where the softphone's media stream
    goes when it is not this origin (the console on ADMIN_PORT, the stream on PUBLIC_URL)."""
    headers = dict(CONSOLE_HEADERS)
    if stream_origin:
        headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
            "connect-src 'self'", f"connect-src 'self' {stream_origin}")
    if not token:
        return [Route("/console", not_found), Route("/console/{name:path}", not_found)]
    files = {name: (CONSOLE_DIR / name).read_bytes() for name in CONSOLE_FILES}

    async def redirect(_request: Request) -> Response:
        return RedirectResponse("/console/", status_code=308)

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        body = files.get(PAGES.get(name, name))
        if body is None:
            return not_found()
        return Response(body, media_type=CONSOLE_FILES[PAGES.get(name, name)], headers=headers)

    return [Route("/console", redirect), Route("/console/{name:path}", serve)]
