"""Queries for apps' custom domains and the TLS certificates served for their hostnames (the
private keys sealed at rest, like config var values)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gun.errors import Conflict
from gun.model import Cert, CertInfo, Domain
from gun.store.queries import Queries
from gun.store.schema import apps, certs, domains
from gun.store.time import now, utc
from gun.tlscerts import Parsed


def taken(hostname: str) -> Conflict:
    """Whoever asks may not see the app that has it: it is not named."""
    return Conflict(f"domain {hostname} belongs to another app")


class DomainQueries(Queries):
    def of(self, app_id: int) -> list[Domain]:
        rows = self.conn.execute(
            select(domains.c.hostname, domains.c.created_at)
            .where(domains.c.app_id == app_id)
            .order_by(domains.c.hostname)
        )
        return [Domain(r.hostname, "custom", utc(r.created_at)) for r in rows]

    def owner(self, hostname: str) -> int | None:
        """The id of the app that has `hostname`, if one does."""
        return self.conn.execute(
            select(domains.c.app_id).where(domains.c.hostname == hostname)
        ).scalar_one_or_none()

    def insert(self, app_id: int, hostname: str) -> Domain:
        created = now()
        try:
            with self.conn.begin_nested():  # another app may have added it meanwhile
                self.conn.execute(
                    insert(domains).values(app_id=app_id, hostname=hostname, created_at=created)
                )
        except IntegrityError:
            raise taken(hostname) from None
        return Domain(hostname, "custom", created)

    def delete(self, app_id: int, hostname: str) -> bool:
        done = self.conn.execute(
            delete(domains).where(domains.c.app_id == app_id, domains.c.hostname == hostname)
        )
        return bool(done.rowcount)

    def all(self) -> list[tuple[str, str]]:
        """(app name, hostname) of every custom domain of every app, by hostname: for the
        router (each app's default hostname is not in it)."""
        rows = self.conn.execute(
            select(apps.c.name, domains.c.hostname)
            .join(apps, apps.c.id == domains.c.app_id)
            .order_by(domains.c.hostname)
        )
        return [(r.name, r.hostname) for r in rows]


def _info(r: Any) -> CertInfo:
    return CertInfo(
        id=r.id,
        hostnames=tuple(r.hostnames),
        not_before=utc(r.not_before),
        not_after=utc(r.not_after),
        fingerprint=r.fingerprint,
        issuer=r.issuer,
        subject=r.subject,
        created_at=utc(r.created_at),
    )


_INFO = (
    certs.c.id,
    certs.c.hostnames,
    certs.c.not_before,
    certs.c.not_after,
    certs.c.fingerprint,
    certs.c.issuer,
    certs.c.subject,
    certs.c.created_at,
)


class CertQueries(Queries):
    def of(self, app_id: int) -> list[CertInfo]:
        """The app's certificates, without their keys, oldest first."""
        rows = self.conn.execute(
            select(*_INFO).where(certs.c.app_id == app_id).order_by(certs.c.id)
        )
        return [_info(r) for r in rows]

    def insert(self, app_id: int, parsed: Parsed, hostnames: tuple[str, ...]) -> CertInfo:
        created = now()
        cert_id = self.conn.execute(
            insert(certs)
            .values(
                app_id=app_id,
                hostnames=list(hostnames),
                chain_pem=parsed.chain_pem,
                key_sealed=self.box.seal(parsed.key_pem),
                not_before=parsed.not_before,
                not_after=parsed.not_after,
                fingerprint=parsed.fingerprint,
                issuer=parsed.issuer,
                subject=parsed.subject,
                created_at=created,
            )
            .returning(certs.c.id)
        ).scalar_one()
        return CertInfo(
            cert_id,
            hostnames,
            parsed.not_before,
            parsed.not_after,
            parsed.fingerprint,
            parsed.issuer,
            parsed.subject,
            created,
        )

    def set_hostnames(self, cert_id: int, hostnames: tuple[str, ...]) -> None:
        self.conn.execute(
            update(certs).where(certs.c.id == cert_id).values(hostnames=list(hostnames))
        )

    def delete(self, cert_id: int) -> None:
        self.conn.execute(delete(certs).where(certs.c.id == cert_id))

    def all(self, app_id: int | None = None) -> list[Cert]:
        """Every app's certificates (or one app's) with their keys decrypted: for the router,
        which serves each for its hostnames by SNI."""
        q = (
            select(
                apps.c.name,
                certs.c.hostnames,
                certs.c.chain_pem,
                certs.c.key_sealed,
                certs.c.not_after,
                certs.c.fingerprint,
            )
            .join(apps, apps.c.id == certs.c.app_id)
            .order_by(apps.c.name, certs.c.id)
        )
        if app_id is not None:
            q = q.where(certs.c.app_id == app_id)
        rows = self.conn.execute(q)
        return [
            Cert(
                app=r.name,
                hostnames=tuple(r.hostnames),
                chain_pem=r.chain_pem,
                key_pem=self.box.open(r.key_sealed),
                not_after=utc(r.not_after),
                fingerprint=r.fingerprint,
            )
            for r in rows
        ]
