"""A user's session with domains and certificates: the real `gun` CLI against a real meta, on
SQLite and PostgreSQL; both forms of each command, --json, refusals as one sentence."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.meta import MetaServer
from tests.tlsmaker import chained, new_key, self_signed


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def test_domains_and_certs_session(shared_meta: MetaServer, tmp_path: Path) -> None:
    gun = shared_meta.gun
    assert gun("apps.create", "shop").code == 0
    assert gun("apps.create", "blog").code == 0

    r = gun("app:shop", "domains.add:WWW.example.com")
    assert (r.code, r.out, r.err) == (0, "Added domain www.example.com to shop\n", "")
    r = gun("domains.add", "*.example.com", "-a", "shop")
    assert (r.code, r.out) == (0, "Added domain *.example.com to shop\n")
    r = gun("app:shop", "domains")
    assert r.out == (
        "HOSTNAME         KIND     CERT\n"
        "shop.localhost   default  -\n"
        "*.example.com    custom   -\n"
        "www.example.com  custom   -\n"
    )

    chain, key, _ = chained(["www.example.com", "shop.localhost"])
    cert_path, key_path = write(tmp_path, "cert.pem", chain), write(tmp_path, "key.pem", key)
    r = gun("app:shop", "certs.add", cert_path, key_path)
    assert r.code == 0, r.err
    listed = json.loads(gun("--json", "app:shop", "certs").out)
    (c,) = listed
    assert set(c) == {
        "hostnames", "expires_at", "not_before", "fingerprint", "issuer", "subject", "created_at"
    }  # fmt: skip
    assert "key" not in json.dumps(listed).lower().replace("keys", "")
    assert c["hostnames"] == ["shop.localhost", "www.example.com"]
    assert r.out == (
        f"Added certificate {c['fingerprint'][:16]} to shop for shop.localhost, www.example.com"
        f" (expires {c['expires_at'][:10]})\n"
    )
    data = json.loads(gun("--json", "app:shop", "domains").out)
    assert [(d["hostname"], d["kind"], d["cert"] and d["cert"]["expires_at"]) for d in data] == [
        ("shop.localhost", "default", c["expires_at"]),
        ("*.example.com", "custom", None),
        ("www.example.com", "custom", c["expires_at"]),
    ]
    assert gun("app:shop", "domains").out.splitlines()[3].split() == [
        "www.example.com", "custom", c["expires_at"][:10]
    ]  # fmt: skip

    # a wildcard certificate covers *.example.com and www.example.com: it takes www's
    wild_chain, wild_key = self_signed(["*.example.com"])
    r = gun(
        "app:shop",
        "certs.add",
        write(tmp_path, "w.pem", wild_chain),
        write(tmp_path, "wk.pem", wild_key),
    )
    assert r.code == 0, r.err
    assert r.err == f"Certificate {c['fingerprint'][:16]} no longer serves www.example.com\n"
    r = gun("app:shop", "certs")
    lines = r.out.splitlines()
    assert lines[0].split() == ["HOSTNAMES", "EXPIRES", "SUBJECT", "ISSUER", "FINGERPRINT"]
    assert [ln.split()[0] for ln in lines[1:]] == [
        "shop.localhost",
        "*.example.com,www.example.com",
    ]

    r = gun("app:shop", "domains.remove:www.example.com")
    assert r.code == 0 and r.out == "Removed domain www.example.com from shop\n"
    assert r.err.endswith(" no longer serves www.example.com\n")
    r = gun("certs.remove", "shop.localhost", "-a", "shop")
    assert r.out == f"Removed certificate {c['fingerprint'][:16]} (shop.localhost) from shop\n"
    (left,) = json.loads(gun("--json", "app:shop", "certs").out)
    assert left["hostnames"] == ["*.example.com"]
    r = gun("app:shop", "domains.remove:*.example.com")
    assert r.err.endswith(" no longer serves *.example.com (removed: it served nothing else)\n")
    assert json.loads(gun("--json", "app:shop", "certs").out) == []


def test_refusals_are_one_sentence(shared_meta: MetaServer, tmp_path: Path) -> None:
    gun = shared_meta.gun
    assert gun("apps.create", "store").code == 0
    assert gun("apps.create", "other").code == 0
    assert gun("app:other", "domains.add:www.taken.com").code == 0
    assert gun("app:store", "domains.add:www.store.com").code == 0

    # meta's refusals exit 1; what the CLI finds wrong in the files before sending them, 2
    def refused(*args: str, token: str | None = None) -> tuple[int, str]:
        r = gun(*args, token=token)
        assert r.out == "" and r.err.count("\n") == 1 and "Traceback" not in r.err
        assert r.err.startswith("gun: ")
        return r.code, r.err.strip().removeprefix("gun: ")

    assert refused("app:store", "domains.add:www.taken.com") == (
        1,
        "domain www.taken.com belongs to another app",
    )
    assert refused("app:store", "domains.add:www.store.com") == (
        1,
        "app 'store' has domain www.store.com already",
    )
    code, err = refused("app:store", "domains.add:bad_name.com")
    assert code == 1 and err.startswith("hostname 'bad_name.com' is invalid")
    code, err = refused("app:store", "domains.add:x.store.localhost")
    assert code == 1 and err.startswith("hostname x.store.localhost is under the router domain")
    assert refused("app:store", "domains.remove:nope.com") == (
        1,
        "app 'store' has no domain nope.com",
    )
    code, err = refused("app:store", "domains.remove:store.localhost")
    assert code == 1 and err.startswith("store.localhost is app store's default hostname")

    garbage = write(tmp_path, "cert.pem", "not a cert\n")
    _, key = self_signed(["www.store.com"])
    key_path = write(tmp_path, "key.pem", key)
    assert refused("app:store", "certs.add", garbage, key_path) == (
        2,
        f"{garbage} is not a PEM certificate",
    )
    chain, _ = self_signed(["www.store.com"])
    pkcs8 = serialization.PrivateFormat.PKCS8
    locked = serialization.BestAvailableEncryption(b"pw")
    enc_key = new_key().private_bytes(serialization.Encoding.PEM, pkcs8, locked)
    enc = write(tmp_path, "enc.pem", enc_key.decode())
    code, err = refused("app:store", "certs.add", write(tmp_path, "c.pem", chain), enc)
    assert code == 2 and err.startswith(f"{enc} is encrypted: give it unencrypted")
    other_chain, other_key = self_signed(["www.nope.com"])
    code, err = refused(
        "app:store",
        "certs.add",
        write(tmp_path, "n.pem", other_chain),
        write(tmp_path, "nk.pem", other_key),
    )
    assert (code, err) == (
        1,
        "the certificate covers www.nope.com, none of app store's domains "
        "(store.localhost, www.store.com)",
    )
    assert refused("app:store", "certs.add", str(tmp_path / "missing.pem"), key_path) == (
        2,
        f"{tmp_path / 'missing.pem'} cannot be read: No such file or directory",
    )

    viewer = gun("tokens.create", "store-eyes", "role=viewer").out.strip()
    scoped = gun("tokens.create", "other-dev", "role=developer", "app=other").out.strip()
    assert gun("app:store", "domains", token=viewer).code == 0
    assert refused("app:store", "domains.add:api.store.com", token=viewer) == (
        1,
        "token 'store-eyes' has role viewer; this needs role developer",
    )
    assert refused("app:store", "certs", token=scoped) == (
        1,
        "token 'other-dev' is scoped to app 'other' and cannot reach app 'store'",
    )
    assert json.loads(gun("--json", "app:store", "domains").out) == [
        {"hostname": "store.localhost", "kind": "default", "cert": None},
        {"hostname": "www.store.com", "kind": "custom", "cert": None},
    ]
    assert json.loads(gun("--json", "app:store", "certs").out) == []
