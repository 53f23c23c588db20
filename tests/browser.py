"""A real browser for tests: Debian's Chromium driven by Playwright (REFERENCE.md §8).

Playwright runs /usr/bin/chromium (`apt-get install chromium`; scripts/setup and .ci/run install
it); `playwright install`, which downloads browsers, is never run. `chromium()` launches it
headless, and afterwards kills what it started whole: Playwright's driver and every process
group of the browser. `page()` gives a page at 1280×800; `login`, `layout_ok` and
`screenshot` are what the dashboard's tests check with.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WIDTH, HEIGHT = 1280, 800


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, per REFERENCE.md §8; on the way out it is closed, then every
    process it and Playwright's driver left is killed by its process group (the browser runs in
    groups of its own; the driver, in ours, by its pid)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"no {CHROMIUM}: apt-get install chromium (scripts/setup does)"
    started: list[psutil.Process] = []
    manager = sync_playwright()
    pw = manager.start()
    try:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        started = psutil.Process().children(recursive=True)
        try:
            yield browser
        finally:
            started = _union(started, psutil.Process().children(recursive=True))
            with contextlib.suppress(Exception):
                browser.close()
    finally:
        started = _union(started, psutil.Process().children(recursive=True))
        with contextlib.suppress(Exception):
            manager.__exit__(None, None, None)
        _kill(started)


def _union(a: list[psutil.Process], b: list[psutil.Process]) -> list[psutil.Process]:
    seen = {p.pid for p in a}
    return a + [p for p in b if p.pid not in seen]


def _kill(processes: list[psutil.Process]) -> None:
    ours = os.getpgrp()
    groups: set[int] = set()
    for p in processes:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if not p.is_running():
                continue
            group = os.getpgid(p.pid)
            if group == ours:
                p.kill()
            else:
                groups.add(group)
    for g in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, signal.SIGKILL)
    for p in processes:  # reaped, so no zombie outlives the test
        with contextlib.suppress(psutil.Error, ChildProcessError):
            p.wait(5)


@contextmanager
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (its own cookies) and a page at 1280×800, closed afterwards."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def login(page: Page, url: str, token: str) -> None:
    """Logs in with `token` at URL/login (`form#login`, field `token`) and waits for the page
    the login leads to."""
    page.goto(f"{url.rstrip('/')}/login")
    page.fill("form#login input[name=token]", token)
    with page.expect_navigation():
        page.click(submit("form#login"))


def submit(form: str) -> str:
    """A selector of the submit button of the form `form` selects (a button without a type
    submits too)."""
    return (
        f"{form} button:not([type=button]):not([type=reset]), "
        f"{form} input[type=submit], {form} input[type=image]"
    )


def fields(page: Page, form: str) -> dict[str, str]:
    """What the form `form` selects would post: its named inputs' and selects' values (the
    first of each name; unchecked boxes left out)."""
    got: dict[str, str] = page.eval_on_selector(
        form,
        "f => Object.fromEntries([...new FormData(f).entries()].reverse()"
        ".map(([k, v]) => [k, String(v)]))",
    )
    return got


def post(page: Page, path: str, form: dict[str, str]) -> int:
    """POSTs `form` (urlencoded) to `path` from the page's own script, as a form of the page
    would (its cookies, its Origin), without following a redirect; returns the status (0 for a
    redirect, which fetch hides)."""
    status: int = page.evaluate(
        """async ([path, form]) => {
          const r = await fetch(path, {method: 'POST', body: new URLSearchParams(form),
                                       credentials: 'same-origin', redirect: 'manual'});
          return r.status;
        }""",
        [path, form],
    )
    return status


# Every visible element's box, and whether it is in the header; elements of zero size,
# display:none or visibility:hidden are not drawn and do not count.
_LAYOUT = """
() => {
  const describe = (e) => {
    let s = e.tagName.toLowerCase();
    if (e.id) s += '#' + e.id;
    for (const c of e.classList) s += '.' + c;
    for (const a of e.attributes) if (a.name.startsWith('data-')) s += `[${a.name}="${a.value}"]`;
    return s;
  };
  const doc = document.documentElement;
  const out = {scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth, header: null,
               overlapping: []};
  const header = document.querySelector('header#top');
  if (!header) return out;
  const h = header.getBoundingClientRect();
  out.header = [Math.round(h.left), Math.round(h.top), Math.round(h.width), Math.round(h.height)];
  for (const e of document.body.querySelectorAll('*')) {
    if (e === header || header.contains(e) || e.contains(header)) continue;
    const style = getComputedStyle(e);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const overlaps = r.left < h.right - 0.5 && r.right > h.left + 0.5
                     && r.top < h.bottom - 0.5 && r.bottom > h.top + 0.5;
    if (overlaps) {
      out.overlapping.push(`${describe(e)} at (${Math.round(r.left)}, ${Math.round(r.top)}) `
                           + `${Math.round(r.width)}×${Math.round(r.height)}`);
    }
  }
  return out;
}
"""


def layout_ok(page: Page) -> list[str]:
    """What is wrong with the page's layout at its width, one line each; [] when nothing:
    no horizontal overflow (the document no wider than the window), a `header#top`, and no
    visible element outside the header whose box intersects the header's (so everything
    beside or above the header is fine, and everything across it is drawn below its bottom)."""
    got = page.evaluate(_LAYOUT)
    wrong: list[str] = []
    if got["scrollWidth"] > got["innerWidth"]:
        wrong.append(
            f"horizontal overflow: the document is {got['scrollWidth']} px wide "
            f"in a {got['innerWidth']} px window"
        )
    if got["header"] is None:
        wrong.append("no header#top")
    else:
        x, y, w, h = got["header"]
        wrong.extend(
            f"overlaps header#top (at ({x}, {y}) {w}×{h}): {e}" for e in got["overlapping"]
        )
    return wrong


def screenshot(page: Page, path: Path, full_page: bool = False) -> Path:
    """The window (the whole page with `full_page`) as a PNG at `path` (its directory made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path
