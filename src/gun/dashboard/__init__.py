"""The dashboard: server-rendered pages of every app a token may see, served by meta under
/dash (rewrite.py sends a browser's `/`, `/login` and `/apps/APP` there), behind a cookie
session (session.py); pages.py holds the routes, templates/ the HTML, static/ the CSS and the
one small script that keeps the processes table and the metrics charts live."""

from gun.dashboard import metrics_pages as _metrics_pages  # noqa: F401  (its routes)
from gun.dashboard.pages import router, static_files
from gun.dashboard.rewrite import Rewrite

__all__ = ["Rewrite", "router", "static_files"]
