"""Client bearer tokens: their format, their signature and the checks of one call.

Pure: no files and no clock of its own (the caller passes ``now_ms``); the key and the
token list live in the data directory (:mod:`memnode.storage.tokenstore`).

A token is ``mnt1.<claims>.<mac>``:

- ``claims``: base64url (no padding) of compact JSON
  ``{"kid": KEY_ID, "id": TOKEN_ID, "scp": ["read", ...], "iat": MS, "exp": MS}``
  (``exp`` 0: no expiry). ``kid`` names the node's signing key (the first 16 hex digits
  of its SHA-256), so a token of another node is told apart from a forged one.
- ``mac``: base64url HMAC-SHA256 of ``"mnt1." + claims`` under the node's token key.

Scopes: ``read`` (Recall, Get, List of own memories, Status), ``write`` (Remember,
RememberBatch, RememberStream, Update, Forget), ``admin`` (everything, including List of
replicas: the export of everything). ``admin`` implies the others; ``write`` does not
imply ``read`` (issue ``--scope read,write`` for an agent that does both).

Every refusal is an :class:`TokenError` whose ``reason`` labels
``memnode_auth_refused_total``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass

from memnode.errors import PermissionDenied, Unauthenticated

PREFIX = "mnt1"
SCOPES = ("read", "write", "admin")
KEY_BYTES = 32
MAX_TOKEN_CHARS = 1024

#: The ``reason`` label values of ``memnode_auth_refused_total``.
REASONS = ("missing", "malformed", "foreign", "bad_signature", "unknown", "revoked",
           "expired", "scope")


class TokenError(Unauthenticated):
    """No token, or one this node does not accept (UNAUTHENTICATED)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ScopeError(PermissionDenied):
    """A good token without the scope the call needs (PERMISSION_DENIED)."""

    reason = "scope"


@dataclass(frozen=True)
class Claims:
    key_id: str
    token_id: str
    scopes: frozenset[str]
    issued_ms: int
    expires_ms: int  # 0: never

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str, what: str) -> None:
        if not self.allows(scope):
            raise ScopeError(f"{what} needs a token with scope {scope!r}; this token "
                             f"({self.token_id}) has {', '.join(sorted(self.scopes))}")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def parse_scopes(values: Iterable[str]) -> frozenset[str]:
    """``["read,write"]`` or ``["read", "write"]`` -> the set; ValueError on an unknown
    or empty scope."""
    scopes = frozenset(s.strip() for v in values for s in v.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"unknown scope {', '.join(unknown) or '(none)'}: "
                         f"use {', '.join(SCOPES)} (comma-separated)")
    return scopes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()


def sign(key: bytes, claims: Claims) -> str:
    body = {"kid": claims.key_id, "id": claims.token_id, "scp": sorted(claims.scopes),
            "iat": claims.issued_ms, "exp": claims.expires_ms}
    encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{PREFIX}.{encoded}"
    return f"{signed}.{_b64(_mac(key, signed))}"


def _malformed(detail: str) -> TokenError:
    return TokenError("malformed", f"malformed token ({detail}): pass the whole token that "
                      "`memnode token issue` printed")


def decode(token: str, key: bytes) -> Claims:
    """The claims of ``token`` if it is well formed and signed by ``key``; raises
    :class:`TokenError` (malformed, foreign, bad_signature) otherwise. Expiry and
    revocation are the caller's: see :func:`check_live`."""
    if not token:
        raise TokenError("missing", "no token: pass --token or set MEMNODE_TOKEN "
                         "(authorization: Bearer TOKEN)")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise _malformed("too long or not ASCII")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise _malformed(f"expected {PREFIX}.CLAIMS.MAC")
    try:
        body = json.loads(_unb64(parts[1]))
        mac = _unb64(parts[2])
        claims = Claims(key_id=body["kid"], token_id=body["id"],
                        scopes=frozenset(body["scp"]), issued_ms=body["iat"],
                        expires_ms=body["exp"])
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise _malformed("unreadable claims") from None
    if not (isinstance(claims.key_id, str) and isinstance(claims.token_id, str)
            and all(isinstance(s, str) for s in claims.scopes)
            and isinstance(claims.issued_ms, int) and isinstance(claims.expires_ms, int)):
        raise _malformed("claims of the wrong type")
    if not hmac.compare_digest(claims.key_id, key_id(key)):
        raise TokenError("foreign", "this token was issued by another node (its signing "
                         "key is not this node's): issue one on this node with "
                         "`memnode token issue`")
    if not hmac.compare_digest(mac, _mac(key, f"{parts[0]}.{parts[1]}")):
        raise TokenError("bad_signature", "token signature does not verify (forged or "
                         "altered)")
    return claims


def check_live(claims: Claims, revoked_ms: int | None, now_ms: int) -> None:
    """``revoked_ms`` is the token list's word: None if the id is not on it, 0 if the
    token is live, else when it was revoked."""
    if revoked_ms is None:
        raise TokenError("unknown", f"token {claims.token_id} is not on this node's token "
                         "list (`memnode token list`)")
    if revoked_ms:
        raise TokenError("revoked", f"token {claims.token_id} was revoked")
    if claims.expires_ms and now_ms >= claims.expires_ms:
        raise TokenError("expired", f"token {claims.token_id} expired; issue a new one")
