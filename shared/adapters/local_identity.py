"""The one-machine runtime's own signing key: how its ticker and queue prove who they are.

On the cloud, Cloud Scheduler and Pub/Sub call the functions with Google-signed OIDC tokens. One
machine has no such service, and it must not borrow the sandbox's issuer in real mode, so the
runtime signs its own calls with a key of its own, generated on first start into ``var/``.

Its issuer string is ``crm-local:<fingerprint of the public key>``: no Google issuer looks like
it, and a new key is a new issuer, so a token minted by another machine's (or an older) key
names an issuer this verifier has no anchor for. The verifier (``shared.adapters.auth``) trusts
this key only for the local ticker and queue identities, never for a person.

The private key never leaves the file (0600, in a 0700 folder); only the public key is
published, through :meth:`LocalKey.jwks` and :meth:`LocalKey.public_pem`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.errors import ConfigurationError

KEY_FILE_NAME = "local-signing-key.pem"
ISSUER_PREFIX = "crm-local:"
# A local token is used at once by the process that minted it; five minutes covers a slow call.
TOKEN_LIFETIME_SECONDS = 300
KEY_SIZE = 2048


@dataclass(frozen=True)
class LocalKey:
    """The runtime's RSA key; mints RS256 tokens under its own issuer."""

    private_pem: bytes = field(repr=False)

    @property
    def _public_der(self) -> bytes:
        return (
            self._private_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the public key (SubjectPublicKeyInfo DER), first 32 hex digits."""
        return hashlib.sha256(self._public_der).hexdigest()[:32]

    @property
    def kid(self) -> str:
        return self.fingerprint

    @property
    def issuer(self) -> str:
        return ISSUER_PREFIX + self.fingerprint

    def public_pem(self) -> str:
        return (
            self._private_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (RFC 7517), for anyone who wants to check."""
        numbers = self._private_key().public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "alg": "RS256",
                    "use": "sig",
                    "kid": self.kid,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    def mint(self, audience: str, identity: str) -> str:
        """A signed ID token for ``identity`` calling ``audience`` (a function's URL), with the
        claims the verifier checks for a service caller."""
        from google.auth import crypt, jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": identity,
            "email": identity,
            "email_verified": True,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
        }
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)
        return jwt.encode(signer, claims, key_id=self.kid).decode("ascii")

    @functools.cached_property
    def _loaded(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError("the local signing key is not an RSA key")
        return key

    def _private_key(self) -> rsa.RSAPrivateKey:
        return self._loaded


def load_or_create_local_key(var_dir: Path) -> LocalKey:
    """The key in ``var_dir``, generated there on first start (folder 0700, file 0600).

    Linked into place whole: two threads or processes starting at once cannot each trust a key
    of their own, and none reads a half-written one; the loser reads the winner's. A key file
    others can read is refused rather than silently used, since anyone who can read it can act
    as the ticker.
    """
    var_dir = Path(var_dir)
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(var_dir, 0o700)
    path = var_dir / KEY_FILE_NAME
    if path.exists():
        return _read_key(path)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written whole under a private name, then linked into place: a reader never sees half a
    # key, and of two creators racing (threads or processes) the first link wins and the
    # other reads the winner's key.
    draft = var_dir / f".{KEY_FILE_NAME}.{os.getpid()}.{threading.get_ident()}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    try:
        os.link(draft, path)
    except FileExistsError:
        return _read_key(path)
    finally:
        draft.unlink()
    return LocalKey(pem)


def _read_key(path: Path) -> LocalKey:
    for _ in range(50):  # another process may be writing it this very moment
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigurationError(
                f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
            )
        pem = path.read_bytes()
        if pem.strip().endswith(b"-----END PRIVATE KEY-----"):
            key = LocalKey(pem)
            key.public_pem()  # a damaged file is refused now, not on the first call
            return key
        time.sleep(0.1)
    raise ConfigurationError(f"{path} does not hold a PEM private key; delete it to make a new one")


def _b64url_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
