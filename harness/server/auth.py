"""Identities and tokens as a standalone SpacetimeDB server issues them (http-api.md section 2).

* An ES256 key pair lives in the data dir as `id_ecdsa` (PKCS#8 PEM) and `id_ecdsa.pub` (SPKI PEM),
  created on first start.
* An identity is derived from (issuer, subject) with BLAKE3 (`derive_identity`).
* Minted tokens: iss `localhost`, a random UUIDv4 subject, aud `["spacetimedb"]`, `exp` null.
* Validation: the signature must be ours (OIDC discovery of other issuers is not done: no network), `iss` and
  `sub` non-empty and at most 128 bytes, `exp` (if not null) checked with 60 s leeway, `hex_identity` (if
  present) must match the identity derived from `iss`/`sub`.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from blake3 import blake3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from spacetime_core.sats import Identity

LOCAL_ISSUER = "localhost"
AUDIENCE = ["spacetimedb"]
WEBSOCKET_TOKEN_SECONDS = 60
LEEWAY_SECONDS = 60
MAX_CLAIM_BYTES = 128


class AuthError(Exception):
    """A credential was refused: `status` is 400 (malformed header) or 401 (bad token / none given)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def derive_identity(issuer: str, subject: str) -> Identity:
    """http-api.md section 2.1: `c200` ++ checksum(4) ++ BLAKE3(iss|sub)[0..26], big-endian."""
    h = blake3(f"{issuer}|{subject}".encode()).digest()[:26]
    c = blake3(b"\xc2\x00" + h).digest()[:4]
    return Identity.from_be_bytes(b"\xc2\x00" + c + h)


@dataclass
class Claims:
    identity: Identity
    issuer: str
    subject: str
    token: str
    payload: dict = field(default_factory=dict)


class KeyPair:
    """The server's signing key (ES256) and its public half."""

    PRIVATE = "id_ecdsa"
    PUBLIC = "id_ecdsa.pub"

    def __init__(self, private_pem: bytes, public_pem: bytes):
        self.private_pem = private_pem
        self.public_pem = public_pem
        self._private = serialization.load_pem_private_key(private_pem, password=None)
        self._public = serialization.load_pem_public_key(public_pem)

    @classmethod
    def generate(cls) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo),
        )

    @classmethod
    def load_or_create(cls, directory: str | Path) -> KeyPair:
        d = Path(directory)
        priv, pub = d / cls.PRIVATE, d / cls.PUBLIC
        if priv.is_file() and pub.is_file():
            return cls(priv.read_bytes(), pub.read_bytes())
        d.mkdir(parents=True, exist_ok=True)
        kp = cls.generate()
        tmp = priv.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(kp.private_pem)
        tmp.replace(priv)
        pub.write_bytes(kp.public_pem)
        return kp


class TokenAuthority:
    """Mints and validates this server's tokens."""

    def __init__(self, keys: KeyPair, issuer: str = LOCAL_ISSUER):
        self.keys = keys
        self.issuer = issuer

    def _sign(self, payload: dict) -> str:
        return jwt.encode(payload, self.keys._private, algorithm="ES256", headers={"typ": "JWT"},
                          sort_headers=False)

    def sign_claims(self, issuer: str, subject: str, *, exp: int | None = None, extra: dict | None = None) -> str:
        identity = derive_identity(issuer, subject)
        payload = {"hex_identity": identity.to_hex(), "sub": subject, "iss": issuer, "aud": AUDIENCE,
                   "iat": int(time.time()), "exp": exp}
        for k, v in (extra or {}).items():
            payload.setdefault(k, v)
        return self._sign(payload)

    def mint(self) -> Claims:
        """A new identity and its long-lived token, as `POST /v1/identity` and anonymous requests get."""
        subject = str(uuid.uuid4())
        token = self.sign_claims(self.issuer, subject)
        return Claims(derive_identity(self.issuer, subject), self.issuer, subject, token)

    def websocket_token(self, claims: Claims) -> str:
        """The same claims re-signed with `exp` = now + 60 s."""
        extra = {k: v for k, v in claims.payload.items()
                 if k not in ("hex_identity", "sub", "iss", "aud", "iat", "exp")}
        return self.sign_claims(claims.issuer, claims.subject, exp=int(time.time()) + WEBSOCKET_TOKEN_SECONDS,
                                extra=extra)

    def validate(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise AuthError(401, f"invalid token: {e}") from None
        if header.get("alg") not in ("ES256", "RS256", "HS256"):
            raise AuthError(401, f"invalid token: unsupported algorithm {header.get('alg')!r}")
        if header.get("alg") != "ES256":
            raise AuthError(401, "invalid token: not signed by this server (and OIDC issuers are not supported)")
        try:
            payload = jwt.decode(token, self.keys._public, algorithms=["ES256"],
                                 options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                          "verify_aud": False, "verify_iss": False, "verify_sub": False,
                                          "verify_jti": False, "require": []})
        except jwt.InvalidSignatureError:
            raise AuthError(401, "invalid token: signature not valid for this server's key") from None
        except jwt.PyJWTError as e:
            raise AuthError(401, f"invalid token: {e}") from None
        iss, sub = payload.get("iss"), payload.get("sub")
        for name, v in (("iss", iss), ("sub", sub)):
            if not isinstance(v, str) or not v:
                raise AuthError(401, f"invalid token: missing `{name}` claim")
            if len(v.encode()) > MAX_CLAIM_BYTES:
                raise AuthError(401, f"invalid token: `{name}` is longer than {MAX_CLAIM_BYTES} bytes")
        if "iat" not in payload:
            raise AuthError(401, "invalid token: missing `iat` claim")
        exp = payload.get("exp")
        if exp is not None:
            if isinstance(exp, bool) or not isinstance(exp, (int, float)):
                raise AuthError(401, "invalid token: `exp` is not a number")
            if exp + LEEWAY_SECONDS < time.time():
                raise AuthError(401, "invalid token: the token has expired")
        identity = derive_identity(iss, sub)
        hex_id = payload.get("hex_identity")
        if hex_id is not None and str(hex_id).lower().removeprefix("0x") != identity.to_hex():
            raise AuthError(401, "invalid token: `hex_identity` does not match the identity of `iss`/`sub`")
        return Claims(identity, iss, sub, token, payload)


def token_from_header(authorization: str | None, query_token: str | None) -> str | None:
    """The credential of a request: `Authorization: Bearer <jwt>`, else `?token=`; None if absent."""
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip() or value.strip().count(".") != 2:
            raise AuthError(400, "Authorization is invalid: malformed token")
        return value.strip()
    if query_token:
        return query_token
    return None


def payload_text(token: str | None) -> str | None:
    """The token's payload as the JSON text it carries (what upstream stores for a connection and a module's
    `get_jwt` returns); None without a token or for one that is not a JWT."""
    parts = token.split(".") if isinstance(token, str) else ()
    if len(parts) != 3:
        return None
    try:
        return base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def decode_payload_unverified(token: str) -> dict:
    """The payload of a JWT without checking it (clients never verify signatures)."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
