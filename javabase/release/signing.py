"""Signatures a team's key makes over what javabase pushes, in the formats
today's tools read:

- an image signature is cosign's (sigstore/cosign specs/SIGNATURE_SPEC.md): a
  Simple Signing payload naming the repository and the manifest digest, signed
  with ECDSA P-256 over SHA-256 (an ASN.1 DER signature, base64 in the
  `dev.cosignproject.cosign/signature` annotation of the payload's layer), so
  `cosign verify --key` accepts it;
- an attestation (SLSA provenance) is an in-toto Statement in a DSSE envelope
  (secure-systems-lab/dsse, payload type application/vnd.in-toto+json) signed
  by the same key.

ECDSA is `cryptography`'s; the DSSE envelope (its pre-authentication encoding
and signature list) is `securesystemslib`'s. Keys: a PEM private key (PKCS#8 or
SEC1, optionally encrypted) from JAVABASE_SIGNING_KEY (the PEM itself, for CI
secrets) or JAVABASE_SIGNING_KEY_FILE, its password from
JAVABASE_SIGNING_KEY_PASSWORD; a PEM public key (what `cosign public-key`
prints) to verify. No key material is ever part of a message."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from ..errors import UsageError

SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"  # a signature as an OCI 1.1 referrer
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
DSSE_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_TYPE = "application/vnd.in-toto+json"
COSIGN_SIGNATURE_KIND = "cosign container image signature"


@dataclass(frozen=True)
class Signer:
    """A team's private key, ready to sign; never shown."""

    key: ec.EllipticCurvePrivateKey

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()

    def sign(self, data: bytes) -> bytes:
        """An ECDSA P-256 / SHA-256 signature (ASN.1 DER) over `data`."""
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def envelope(self, statement: bytes) -> bytes:
        """`statement` (an in-toto Statement) in a signed DSSE envelope, as JSON. The
        signature's keyid is the sha256 of the public key's DER form, as cosign
        (go-securesystemslib) computes it for a key it is given."""
        envelope = Envelope(payload=statement, payload_type=IN_TOTO_TYPE, signatures={})
        envelope.sign(CryptoSigner(self.key, _sslib_key(self.public)))
        return json.dumps(envelope.to_dict(), sort_keys=True).encode()


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """Hex sha256 of the public key's DER (SubjectPublicKeyInfo) form: its name."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _sslib_key(public: ec.EllipticCurvePublicKey) -> SSlibKey:
    return SSlibKey.from_crypto(public, keyid=key_id(public))


def load_signer(pem: bytes, password: str | None, where: str) -> Signer:
    """The private key in `pem` (named `where` in a message). Raises UsageError
    when it is not a readable ECDSA P-256 key (or the password is wrong)."""
    try:
        key = serialization.load_pem_private_key(pem, password.encode() if password else None)
    except TypeError:
        raise UsageError(f"{where}: the key is encrypted; set JAVABASE_SIGNING_KEY_PASSWORD") from None
    except ValueError:
        raise UsageError(f"{where}: not a PEM private key, or the password (JAVABASE_SIGNING_KEY_PASSWORD) is "
                         "wrong; make one with `openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 "
                         "-topk8 -nocrypt`") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UsageError(f"{where}: javabase signs with ECDSA P-256 (what cosign uses); this key is another kind")
    return Signer(key)


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """The PEM public key at `path`. Raises UsageError when it cannot be read or is not ECDSA P-256."""
    try:
        pem = path.read_bytes()
        key = serialization.load_pem_public_key(pem)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the public key ({exc.strerror or exc})") from None
    except ValueError:
        if b"PRIVATE KEY-----" in pem:
            raise UsageError(f"{path}: is a private key; checking needs only its public half (`openssl ec -in "
                             f"{path} -pubout`), and the private key belongs only where images are signed") from None
        raise UsageError(f"{path}: not a PEM public key (`cosign public-key --key ...` or `openssl ec -pubout` "
                         "prints one)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UsageError(f"{path}: not an ECDSA P-256 public key")
    return key


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """The Simple Signing payload cosign signs for repository@digest (compact JSON)."""
    body = {"critical": {"identity": {"docker-reference": repository}, "image": {"docker-manifest-digest": digest},
                         "type": COSIGN_SIGNATURE_KIND}, "optional": None}
    return json.dumps(body, separators=(",", ":")).encode()


def check_payload(payload: bytes, signature_b64: str, public: ec.EllipticCurvePublicKey, digest: str) -> str | None:
    """Why a Simple Signing payload and its signature do not vouch for `digest`
    under `public`, or None when they do."""
    try:
        public.verify(base64.b64decode(signature_b64), payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return "its signature does not verify with the key"
    try:
        critical = json.loads(payload)["critical"]
        named, kind = critical["image"]["docker-manifest-digest"], critical["type"]
    except (ValueError, KeyError, TypeError):
        return "its payload is not a Simple Signing payload"
    if kind != COSIGN_SIGNATURE_KIND:
        return f"its payload's type is {kind!r}"
    if named != digest:
        return f"it signs {named}, not {digest}"
    return None


def open_envelope(data: bytes, public: ec.EllipticCurvePublicKey) -> tuple[dict[str, Any] | None, str | None]:
    """(the Statement, None) when the DSSE envelope verifies with `public`, else (None, why not)."""
    try:
        envelope = Envelope.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError):
        return None, "it is not a DSSE envelope"
    if envelope.payload_type != IN_TOTO_TYPE:
        return None, f"its payload type is {envelope.payload_type!r}, not an in-toto Statement"
    try:
        envelope.verify([_sslib_key(public)], 1)
    except (VerificationError, ValueError):
        return None, "its signature does not verify with the key"
    try:
        statement = json.loads(envelope.payload)
    except ValueError:
        return None, "its payload is not JSON"
    return (statement, None) if isinstance(statement, dict) else (None, "its payload is not an in-toto Statement")
