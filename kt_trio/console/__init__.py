"""`GET /console`: the live console page, served from the wheel (DESIGN.md "Operating it live").

The page is static: one HTML file, plain ES modules and a stylesheet in `kt_trio/console/assets`,
no build step and nothing fetched from anywhere else. Everything it shows comes from the same
origin at run time: `/admin/sessions` (polled), `/ws/events` (live) and `/metrics` (the breakers'
starting states). Those are the protected parts; the page itself holds no data, so it is served
to anyone and shows a login form until an admin key has been exchanged for the console cookie.
"""

from kt_trio.console.serve import CONSOLE_PATH, handles, serve_console

__all__ = ["CONSOLE_PATH", "handles", "serve_console"]
