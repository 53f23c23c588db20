"""The dashboard: server-rendered pages of every app a token may see, served by meta under
/dash (rewrite.py sends a browser's `/`, `/login` and `/apps/APP` there), behind a cookie
session (session.py); pages.py holds the routes, templates/ the HTML, static/ the CSS and the
one small script that keeps the processes table and the metrics charts live; logs_pages.py the
logs page (its live tail in static/tail.js), metrics_pages.py the metrics page."""

from gun.dashboard import metrics_pages as _metrics_pages  # noqa: F401  (its routes)
from gun.dashboard.logs_pages import router as logs_router
from gun.dashboard.pages import router, static_files
from gun.dashboard.rewrite import Rewrite

__all__ = ["Rewrite", "logs_router", "router", "static_files"]
