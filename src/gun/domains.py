"""Domains: the hostnames the router sends to an app (pure).

Every app is reached at its default hostname `APP.<router domain>` (GUN_ROUTER_DOMAIN, default
`localhost`); users add hostnames of their own (custom domains). A hostname is written as RFC
1123 says, lowercased on input:

- labels of 1 to 63 characters of a-z, 0-9 and `-`, not starting or ending with `-`;
- at least two labels (`example.com`, not `com`), at most 253 characters in all;
- no trailing dot (`example.com.` is refused, not quietly trimmed);
- a leading `*.` makes a wildcard domain, as Heroku allows: `*.example.com` is every name one
  label under example.com (`a.example.com`, not `example.com`, not `a.b.example.com`). The
  part after `*.` must itself have at least two labels (`*.com` is refused).

Hostnames under the router domain (and the router domain itself) are apps' default names:
nobody may add one.

A certificate's name covers a hostname when it is the same name, or when it is `*.REST` and
the hostname is one label followed by `.REST` (what browsers check, RFC 6125).
"""

from __future__ import annotations

import re

from gun.errors import InvalidParams
from gun.model import show

MAX_LENGTH = 253
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_RULE = (
    "use labels of 1-63 letters, digits and dashes (not starting or ending with a dash), "
    "separated by dots, at least two of them, 253 characters at most"
)


def check_hostname(raw: object) -> str:
    """`raw` lowercased, when it is a hostname as the module docstring says; else InvalidParams
    naming it (and nothing else, whatever `raw` is)."""
    if not isinstance(raw, str):
        raise InvalidParams(f"hostname {raw!r} is not text")
    name = raw.lower() if raw.isascii() else raw
    if len(name) > MAX_LENGTH:
        raise InvalidParams(
            f"hostname {show(raw)} is {len(name)} characters long: use at most {MAX_LENGTH}"
        )
    rest = name[2:] if name.startswith("*.") else name
    labels = rest.split(".")
    if not name.isascii() or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise InvalidParams(f"hostname {show(raw)} is invalid: {_RULE}")
    return name


def default_hostname(app: str, router_domain: str) -> str:
    """The hostname every app is reached at without adding any: APP.<router domain>."""
    return f"{app}.{router_domain}"


def is_under(hostname: str, router_domain: str) -> bool:
    """Whether `hostname` is the router domain or a name under it (apps' default names)."""
    return hostname == router_domain or hostname.endswith("." + router_domain)


def covers(name: str, hostname: str) -> bool:
    """Whether a certificate's DNS name `name` covers `hostname` (both lowercase): the same
    name, or a wildcard `*.REST` and `hostname` one label then `.REST`. A wildcard domain is
    covered only by the same wildcard name."""
    if name == hostname:
        return True
    if not name.startswith("*.") or hostname.startswith("*."):
        return False
    label, dot, rest = hostname.partition(".")
    return bool(label) and bool(dot) and rest == name[2:]
