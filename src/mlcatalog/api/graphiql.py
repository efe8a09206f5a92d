"""The GraphiQL page, served with its scripts and styles from the package (no CDN, no network)."""

import base64
import hashlib
from functools import cache
from html import escape
from pathlib import Path

from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

# Where the assets are mounted: relative to the page at /graphql, so a path prefix still works.
ASSETS_PATH = "graphiql"

STYLES = ["graphiql-3.8.3.min.css"]
# In order: GraphiQL's UMD bundle expects React and ReactDOM as globals.
SCRIPTS = [
    "react-18.3.1.production.min.js",
    "react-dom-18.3.1.production.min.js",
    "graphiql-3.8.3.min.js",
    "mlcatalog-graphiql.js",
]

# GraphiQL's components (emotion) insert <style> elements and its fonts and icons are data: URLs.
# connect-src 'self' also covers ws:/wss: to the same host (CSP Level 3) for subscriptions.
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def integrity(name: str) -> str:
    digest = hashlib.sha384((STATIC / name).read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode()


# Relative to the page at /graphql, like the assets.
LOGIN_LINK = (
    '\n    <a href="auth/login" style="position: fixed; top: 6px; right: 12px; z-index: 10">'
    "log in</a>"
)


@cache
def page(*, login_link: bool = False) -> str:
    """The page's HTML, with subresource integrity for every asset (computed once); with a "log
    in" link when browser login is on and the browser has no session."""
    styles = "".join(
        f'\n    <link rel="stylesheet" href="{escape(ASSETS_PATH)}/{escape(name)}"'
        f' integrity="{integrity(name)}">'
        for name in STYLES
    )
    scripts = "".join(
        f'\n    <script src="{escape(ASSETS_PATH)}/{escape(name)}"'
        f' integrity="{integrity(name)}"></script>'
        for name in SCRIPTS
    )
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>mlcatalog · GraphiQL</title>
    <link rel="icon" href="data:,">{styles}
  </head>
  <body style="margin: 0">{LOGIN_LINK if login_link else ""}
    <div id="graphiql" style="height: 100vh">Loading…</div>{scripts}
  </body>
</html>
"""


def assets() -> StaticFiles:
    return StaticFiles(directory=STATIC)
