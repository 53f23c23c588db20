"""A layer's provider and that provider's settings (pure): where `instances.create:LAYER`
makes the layer's instances when it names no provider itself.

    gun app:A layers.set:app provider=ec2 ami=ami-0abc1234 subnet=subnet-0abc1234 \\
        security_groups=sg-0abc1234,sg-0def5678 key_name=deploy root=/var/lib/gun

- `provider`: local, ssh or ec2 (unset: local, as before layers named one).
- ec2's settings: `ami` (ami- and 8 or 17 hex digits), `subnet` (subnet-...), `security_groups`
  (1 to 5 sg-... ids, comma-separated), `key_name` (1 to 255 printable ASCII characters),
  `root` (where the agent lives on the instance; default /var/lib/gun). RunInstances needs
  `ami`; the others are passed on when set (EC2's defaults otherwise: the default VPC's
  subnet and security group, no key pair).
- A setting of ec2 on a layer whose provider is not ec2 is refused: it would do nothing.

`parse(provider, given, before)` validates each given word and merges it into the layer's
settings `before` (an empty value removes that setting); every refusal is one sentence naming
the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from gun.errors import InvalidParams

PROVIDERS = ("local", "ssh", "ec2")
DEFAULT_ROOT = "/var/lib/gun"
MAX_SECURITY_GROUPS = 5
_AMI = re.compile(r"ami-([0-9a-f]{8}|[0-9a-f]{17})\Z")
_SUBNET = re.compile(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})\Z")
_SG = re.compile(r"sg-([0-9a-f]{8}|[0-9a-f]{17})\Z")


@dataclass(frozen=True)
class LayerSettings:
    """A layer's ec2 settings; None where unset."""

    ami: str | None = None
    subnet: str | None = None
    security_groups: tuple[str, ...] | None = None
    key_name: str | None = None
    root: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LayerSettings:
        data = data or {}
        groups = data.get("security_groups")
        return cls(
            ami=data.get("ami"),
            subnet=data.get("subnet"),
            security_groups=tuple(groups) if groups is not None else None,
            key_name=data.get("key_name"),
            root=data.get("root"),
        )

    def shown(self) -> str:
        """`ami=... subnet=...` as the user would type them; empty when nothing is set."""
        return " ".join(
            f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in self.to_json().items()
        )


NAMES = tuple(f.name for f in fields(LayerSettings))


def _quoted(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise InvalidParams(
            f"provider {_quoted(provider)} is unknown: use one of {', '.join(PROVIDERS)}"
        )
    return provider


def _one(name: str, value: str) -> str | tuple[str, ...]:
    """One setting's value, checked; InvalidParams naming the field otherwise."""
    if name == "ami" and not _AMI.match(value):
        raise InvalidParams(f"ami {_quoted(value)} is not an AMI id (ami- and 8 or 17 hex digits)")
    if name == "subnet" and not _SUBNET.match(value):
        raise InvalidParams(
            f"subnet {_quoted(value)} is not a subnet id (subnet- and 8 or 17 hex digits)"
        )
    if name == "security_groups":
        groups = tuple(dict.fromkeys(g.strip() for g in value.split(",") if g.strip()))
        if not 1 <= len(groups) <= MAX_SECURITY_GROUPS:
            raise InvalidParams(
                f"security_groups {_quoted(value)} must name 1 to {MAX_SECURITY_GROUPS} security"
                " groups, comma-separated"
            )
        for g in groups:
            if not _SG.match(g):
                raise InvalidParams(
                    f"security_groups: {_quoted(g)} is not a security group id"
                    " (sg- and 8 or 17 hex digits)"
                )
        return groups
    if name == "key_name" and not (
        len(value) <= 255 and all(" " <= c <= "~" for c in value) and value.strip() == value
    ):
        raise InvalidParams(
            f"key_name {_quoted(value)} must be 1 to 255 printable ASCII characters,"
            " without spaces at either end"
        )
    if name == "root":
        from gun.model import check_host_root  # model imports this module

        return check_host_root(value)
    return value


def parse(
    provider: str | None, given: Mapping[str, str], before: LayerSettings | None = None
) -> LayerSettings:
    """`before` with each of `given` (name -> text, as typed) checked and set; an empty text
    unsets that setting. Settings need provider ec2 (the layer's, after this change)."""
    settings = before or LayerSettings()
    for name, value in given.items():
        if name not in NAMES:
            raise InvalidParams(
                f"{_quoted(name)} is not a layer setting: use one of {', '.join(NAMES)}"
            )
        if not isinstance(value, str):
            raise InvalidParams(f"{name} must be a string")
        if value and provider != "ec2":
            raise InvalidParams(
                f"{name}= is a setting of provider ec2; this layer's provider is"
                f" {provider or 'local'} (set provider=ec2 with it)"
            )
        changed: Any = {name: _one(name, value) if value else None}
        settings = replace(settings, **changed)
    return settings
