"""Team and admin tokens: random, shown once, stored only as a salted scrypt hash.

A token reads ``<kind>-<selector>-<secret>``. The selector (not secret) finds the one stored
hash to check, so a request costs one hash however many teams there are; the secret is 32
random bytes. Why scrypt with small cost parameters: the secret is random (256 bits), not a
password a person chose, so no dictionary attack applies; the salted slow hash only keeps a
stolen database from handing out working tokens, and it must stay cheap enough for 100
students submitting at once. Comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

#: scrypt cost (N, r, p): about a millisecond per check on one core
SCRYPT = (2**11, 8, 1)
_TOKEN = re.compile(r"([a-z]+)-([0-9a-f]{16})-([A-Za-z0-9_-]{20,64})")


def new_token(kind: str) -> str:
    """A fresh token of ``kind`` (team, admin, cookie)."""
    return f"{kind}-{secrets.token_hex(8)}-{secrets.token_urlsafe(32)}"


def selector_of(token: object) -> str | None:
    """The lookup part of a well-formed token, or None for anything else."""
    if not isinstance(token, str):
        return None
    match = _TOKEN.fullmatch(token.strip())
    return match.group(2) if match else None


def hash_token(token: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of the whole token with a fresh salt."""
    n, r, p = SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_token(token: object, stored: str | None) -> bool:
    """True when ``token`` hashes to ``stored``; False for anything malformed."""
    if not isinstance(token, str) or not stored or selector_of(token) is None:
        return False
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            token.strip().encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)
