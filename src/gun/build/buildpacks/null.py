"""The null buildpack: a Procfile and files, nothing to build; the app runs as it was pushed."""

from __future__ import annotations

from pathlib import Path

from gun.build.buildpacks.base import Context

NAME = "null"


def detect(app_dir: Path) -> bool:
    return True


def compile(ctx: Context) -> dict[str, str]:
    ctx.step("No language detected; using the null buildpack: files as pushed, nothing to build")
    return {}
