"""The live dashboard at `/dashboard` of the monitoring port: one HTML page whose script polls
the JSON endpoints (/varz, /connz, /accstatz, /jsz, /routez, /leafz) from the same origin and
draws what they say, rates and charts included.

Why the server only serves files: the endpoints already are the data, so the dashboard adds no
second source of truth and no state to the server; everything it shows a user can get with
curl too. The page, its style and its script ship as package data (`static/`), with no CDN
and no npm package: a monitoring port is often reached where the internet is not. They are
joined into one response, so the page works at `/dashboard` and `/dashboard/` alike and under
any `http_base_path` (given to the script as `data-base`).
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

ASSET_PACKAGE = "pynats.server"
ASSET_DIR = "static"
CONTENT_TYPE = "text/html; charset=utf-8"


@cache
def asset(name: str) -> str:
    """A file of `static/`, read once per process."""
    return (resources.files(ASSET_PACKAGE) / ASSET_DIR / name).read_text(encoding="utf-8")


def page(base_path: str) -> bytes:
    """The dashboard with its style and script inlined; `base_path` is where the JSON endpoints
    are (`http_base_path` without its trailing slash, "" at the root)."""
    text = asset("dashboard.html").replace("{{base}}", html.escape(base_path, quote=True))
    text = text.replace("/*{{style}}*/", asset("dashboard.css"))
    return text.replace("/*{{script}}*/", asset("dashboard.js")).encode()
