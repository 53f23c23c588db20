"""The dashboard's routes, under /dash (rewrite.py sends a browser's `/`, `/login`, `/apps` and
`/apps/APP` here). Each page reads through the Platform as the session's token; each action
is one Platform method (its own authorize, its own audit event). They take no bearer token,
so the gate lets them through (api/gate.py) and they answer for themselves: no session, a
redirect to /login; a POST without the session's CSRF token, 403.

route                                  what
GET  /dash/login                       the sign-in form
POST /dash/login                       sign in (field `token`): the session cookie, then /
POST /dash/logout                      sign out
GET  /dash/  and /dash/apps            the apps page
GET  /dash/apps/{app}                  the app page
GET  /dash/apps/{app}/processes        the processes table's rows (live.js polls it)
GET  /dash/apps/{app}/metrics          the metrics page (metrics_pages.py)
POST /dash/apps/{app}/scale            scale: `type`, `quantity`
POST /dash/apps/{app}/rollback         rollback to `version` (once `confirmed`)
GET  /dash/apps/{app}/rollback         the confirmation of a rollback to ?version=N
GET  /dash/apps/{app}/logs[/stream]    the logs page and its live tail: logs_pages.py
GET  /dash/static/...                  gun.css, live.js, tail.js
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from gun import formation as formations
from gun.core import Platform
from gun.core.access import authorize
from gun.dashboard import drainclient, metrics, views
from gun.dashboard import session as sessions
from gun.dashboard.session import Session
from gun.errors import GunError, InvalidParams, NotFound
from gun.model import Principal, role_at_least
from gun.store.time import now

PREFIX = "/dash"
STATIC = Path(__file__).parent / "static"
router = APIRouter(prefix=PREFIX, include_in_schema=False)
templates = Environment(
    loader=PackageLoader("gun.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
Form = dict[str, str]
SUMMARIES_BUDGET = 0.25  # seconds the apps page waits for the drain's figures, then shows `–`


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


def render(name: str, code: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**values), status_code=code)


def failed(e: GunError, s: Session | None) -> HTMLResponse:
    """gun's error as a page: its status, its one sentence."""
    return render("error.html", e.status, status=e.status, message=e.message, session=s)


def to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def app_path(app: str) -> str:
    return f"/apps/{quote(app, safe='')}"


def platform_of(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


def acts(who: Principal) -> bool:
    """Whether `who` gets the controls (scale, rollback); the Platform judges each action."""
    return role_at_least(who.role, "developer")


def visible(who: Principal, app: str) -> None:
    """A token scoped to another app never learns this one exists: 404, as for no app."""
    if who.app is not None and who.app != app:
        raise NotFound(f"app {app!r} does not exist")


async def form_of(request: Request) -> Form:
    """A urlencoded form's fields (the first of each); the gate has capped the body."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def signed_in(page: Callable[[Request, Session], Response]) -> Callable[[Request], Response]:
    """A GET page: its session, else a redirect to /login; gun's errors as pages."""

    def endpoint(request: Request) -> Response:
        s = sessions.current(request)
        if s is None:
            return to("/login")
        try:
            return page(request, s)
        except GunError as e:
            return failed(e, s)

    endpoint.__name__ = page.__name__
    return endpoint


def action(
    act: Callable[[Request, Session, Form], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """A POST: its session (else /login), its CSRF token (else 403), then `act` off the
    event loop; gun's errors as pages."""

    async def endpoint(request: Request) -> Response:
        form = await form_of(request)

        def run() -> Response:
            s = sessions.current(request)
            if s is None:
                return to("/login")
            try:
                sessions.check_csrf(s, form.get("csrf"))
                return act(request, s, form)
            except GunError as e:
                return failed(e, s)

        return await to_thread.run_sync(run)

    endpoint.__name__ = act.__name__
    return endpoint


@router.get("/login")
def login_page(request: Request) -> Response:
    return render("login.html", error=None, session=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    token = form.get("token", "")

    def run() -> Response:
        try:
            sessions.check_same_origin(request)
            sessions.sign_in(platform_of(request), token)
        except GunError as e:
            return render("login.html", e.status, error=e.message, session=None)
        response = to("/")
        sessions.start(request, response, token.strip())
        return response

    return await to_thread.run_sync(run)


def logout(request: Request, s: Session, form: Form) -> Response:
    response = to("/login")
    sessions.end(request, response)
    return response


def apps_page(request: Request, s: Session) -> Response:
    gun = platform_of(request)
    apps = gun.apps.statuses(s.who)
    token = s.token
    summaries = drainclient.summaries_soon(gun, token, [a.app for a in apps], SUMMARIES_BUDGET)
    at = now()
    rows = [views.app_row(status, at) for status in apps]
    got = summaries() or {}
    figures = {
        name: metrics.app_figures(one.requests, one.errors, one.p95) for name, one in got.items()
    }
    unknown = metrics.AppFigures(metrics.UNKNOWN, metrics.UNKNOWN)
    shown = [(r, figures.get(r.name, unknown)) for r in rows]
    return render("apps.html", session=s, apps=shown, title="Apps")


def app_page(request: Request, s: Session) -> Response:
    name = request.path_params["app"]
    visible(s.who, name)
    gun, who = platform_of(request), s.who
    app = gun.apps.get(who, name)
    totals, _ = gun.formation.get(who, name)
    releases = gun.releases.all(who, name, limit=50)
    current = next((r for r in releases if r.version == app.release), None)
    events = gun.apps.events(who, name, limit=50)
    at, instances = now(), gun.instances.all(who, name)
    return render(
        "app.html",
        session=s,
        title=name,
        app=name,
        path=app_path(name),
        acts=acts(who),
        scalable=views.scalable(totals, current),
        formation=views.formation_text(totals),
        instances=views.by_instance(gun.processes.all(who, name), at),
        machines=views.instance_rows(instances, at),
        layers=views.layer_rows(gun.layers.all(who, name), instances),
        memory=memory_of(request, s, name),
        releases=[(r, views.may_roll_back_to(r, app.release)) for r in releases],
        config=views.config_rows(gun.config.get(who, name), request.query_params.get("show")),
        events=[(e, json.dumps(e.detail, sort_keys=True)) for e in events],
    )


def processes_rows(request: Request, s: Session) -> Response:
    name = request.path_params["app"]
    visible(s.who, name)
    instances = views.by_instance(platform_of(request).processes.all(s.who, name), now())
    return render("processes.html", instances=instances, memory=memory_of(request, s, name))


def memory_of(request: Request, s: Session, app: str) -> dict[str, str]:
    """Each process's memory (`41 / 512 MB`) from the drain's runtime metrics; {} when the
    drain cannot say within SUMMARIES_BUDGET."""
    token = s.token
    got = drainclient.memory_now(platform_of(request), s.who, app, token, SUMMARIES_BUDGET)
    return {p: views.memory_text(rss, quota) for p, (rss, quota) in got.items()}


def scale(request: Request, s: Session, form: Form) -> Response:
    name = request.path_params["app"]
    visible(s.who, name)
    ptype, quantity = form.get("type", ""), form.get("quantity", "").strip()
    change = formations.parse_word(f"{ptype}={quantity}")
    platform_of(request).formation.scale(s.who, name, [change])
    return to(app_path(name) + "#formation")


def version_of(text: str | None) -> int:
    if text is None or not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise InvalidParams(f"version {text!r} is not a release number like 3")
    return int(text)


def rollback(request: Request, s: Session, form: Form) -> Response:
    name = request.path_params["app"]
    visible(s.who, name)
    authorize(s.who, "developer", name)  # a viewer is refused here, not shown a confirmation
    version = version_of(form.get("version"))
    if form.get("confirmed") != "yes":  # no JavaScript asked: the confirmation page asks
        return to(f"{PREFIX}{app_path(name)}/rollback?version={version}")
    platform_of(request).releases.rollback(s.who, name, version)
    return to(app_path(name) + "#releases")


def confirm_rollback(request: Request, s: Session) -> Response:
    name = request.path_params["app"]
    visible(s.who, name)
    authorize(s.who, "developer", name)
    version = version_of(request.query_params.get("version"))
    gun = platform_of(request)
    release = gun.releases.info(s.who, name, version).release
    return render(
        "rollback.html",
        session=s,
        title=f"Roll back {name}",
        app=name,
        path=app_path(name),
        release=release,
        acts=acts(s.who),
    )


router.add_api_route("/", signed_in(apps_page), methods=["GET"])
router.add_api_route("/apps", signed_in(apps_page), methods=["GET"])
router.add_api_route("/apps/{app}", signed_in(app_page), methods=["GET"])
router.add_api_route("/apps/{app}/processes", signed_in(processes_rows), methods=["GET"])
router.add_api_route("/apps/{app}/rollback", signed_in(confirm_rollback), methods=["GET"])
router.add_api_route("/apps/{app}/scale", action(scale), methods=["POST"])
router.add_api_route("/apps/{app}/rollback", action(rollback), methods=["POST"])
router.add_api_route("/logout", action(logout), methods=["POST"])
