"""Secrets at rest: config var values under Fernet, API tokens as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gun import isolation
from gun.errors import Unavailable, UsageError

TOKEN_PREFIX = "gun_"


def load_or_create_key(home: Path, given: str | None) -> bytes:
    """The Fernet key: `given` (GUN_SECRET_KEY), else `$GUN_HOME/secret.key`, made once (0600)."""
    if given:
        key = given.strip().encode()
        _check_key(key, "GUN_SECRET_KEY")
        return key
    path = home / "secret.key"
    if path.exists():
        key = path.read_bytes().strip()
        _check_key(key, str(path))
        return key
    isolation.make_dir(home, isolation.SEARCHABLE)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def _check_key(key: bytes, where: str) -> None:
    try:
        Fernet(key)
    except ValueError:
        raise UsageError(
            f"the secret key in {where} is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


class Box:
    """Encrypts and decrypts config var values with one Fernet key; signs with it too."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def mac(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of `value` under the key, for `purpose` (a value mac'd for one purpose
        is no proof for another): hex."""
        key = hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Unavailable(
                "a stored secret cannot be decrypted: GUN_SECRET_KEY differs from the key "
                "the data was written with"
            ) from None


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
