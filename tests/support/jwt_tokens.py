"""JWT test material: key pairs made with `cryptography` (RSA, EC P-256, Ed25519), their
JWKS entries, and compact JWS tokens assembled by hand (base64url header.payload.signature),
so the proxy under test is checked against an independent signer."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int, size: int | None = None) -> bytes:
    return n.to_bytes(size or (n.bit_length() + 7) // 8, "big")


@dataclass
class Key:
    """A private key with its JWS algorithm and `kid`."""

    alg: str
    kid: str
    private: Any

    def jwk(self) -> dict[str, str]:
        public = self.private.public_key()
        base = {"kid": self.kid, "alg": self.alg}
        if self.alg.startswith("RS"):
            n = public.public_numbers()
            return {
                "kty": "RSA",
                **base,
                "n": b64url(_int_bytes(n.n)),
                "e": b64url(_int_bytes(n.e)),
            }
        if self.alg == "ES256":
            n = public.public_numbers()
            return {
                "kty": "EC",
                **base,
                "crv": "P-256",
                "x": b64url(_int_bytes(n.x, 32)),
                "y": b64url(_int_bytes(n.y, 32)),
            }
        raw = public.public_bytes_raw()
        return {"kty": "OKP", **base, "crv": "Ed25519", "x": b64url(raw)}

    def sign(self, message: bytes) -> bytes:
        if self.alg == "RS256":
            return bytes(self.private.sign(message, padding.PKCS1v15(), hashes.SHA256()))
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))
            return _int_bytes(r, 32) + _int_bytes(s, 32)
        return bytes(self.private.sign(message))


def make_key(alg: str, kid: str) -> Key:
    if alg == "RS256":
        return Key(alg, kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    if alg == "ES256":
        return Key(alg, kid, ec.generate_private_key(ec.SECP256R1()))
    assert alg == "EdDSA", alg
    return Key(alg, kid, ed25519.Ed25519PrivateKey.generate())


def jwks(*keys: Key) -> str:
    return json.dumps({"keys": [k.jwk() for k in keys]})


def token(key: Key, **claims: Any) -> str:
    """A signed token; `exp` defaults to ten minutes from now (None leaves it out)."""
    body = {"exp": int(time.time()) + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    header = b64url(json.dumps({"alg": key.alg, "typ": "JWT", "kid": key.kid}).encode())
    payload = b64url(json.dumps(body).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{b64url(key.sign(signing_input))}"


def tamper(t: str) -> str:
    """The token with one signature byte changed."""
    head, sig = t.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[5] ^= 0x01
    return f"{head}.{b64url(bytes(raw))}"
