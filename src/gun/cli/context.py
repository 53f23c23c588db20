"""What every command gets: output mode, the app it acts on, and a client for meta."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import click

from gun.cli import credentials
from gun.cli.client import Client
from gun.errors import UsageError
from gun.settings import pem_certificates


@dataclass
class Ctx:
    json: bool = False
    api: str | None = None
    token: str | None = None
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        if self._client is None:
            api = self.api or os.environ.get("GUN_API_URL")
            token = self.token or os.environ.get("GUN_API_TOKEN")
            ca = pem_certificates("GUN_API_CA")
            if not (api and token):
                saved = credentials.load()
                if saved is not None and (api is None or api == saved.api):
                    ca = ca or saved.ca  # the CA saved goes with the meta it was saved for
                api = api or (saved.api if saved else None)
                token = token or (saved.token if saved else None)
            if not api:
                raise UsageError(
                    "no meta to talk to: run `gun up`, or `gun login --api URL --token TOKEN`"
                )
            self._client = Client(api, token, ca=ca)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


pass_ctx = click.make_pass_decorator(Ctx)


def app_option(f: Any) -> Any:
    """`-a/--app NAME` (also `app:NAME` and GUN_APP)."""
    return click.option(
        "-a", "--app", "app", envvar="GUN_APP", help="the app (also app:NAME or GUN_APP)"
    )(f)


def need_app(app: str | None) -> str:
    if not app:
        raise UsageError("no app given: write app:NAME before the command, -a NAME, or set GUN_APP")
    return app
