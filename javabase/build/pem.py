"""The certificate files of a run (`certificates:`), checked once they are
verified and before anything is built: each must hold a PEM certificate, and
none may hold a private key, which would be baked into the image's layers for
anyone who pulls it. Raises ArtifactError: one line naming file:line and key."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..errors import ArtifactError
from ..manifest.model import Artifact
from .artifacts import Fetched

CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def check_certificates(manifest: str, fetched: Mapping[str, Fetched], artifacts: Iterable[Artifact]) -> None:
    """Raise ArtifactError for the first certificate file that holds a private
    key or no PEM certificate. `manifest` is the manifest as shown to people."""
    for artifact in artifacts:
        if not artifact.certificate or artifact.sha256 not in fetched:
            continue
        data = fetched[artifact.sha256].path.read_bytes()
        where = f"{manifest}:{artifact.line}: {artifact.key}: {artifact.filename}"
        if PRIVATE_KEY.search(data):
            raise ArtifactError(f"{where} holds a private key, which would be baked into the image for everyone who "
                                "pulls it; give the CA's certificate alone. Nothing was built")
        if not CERTIFICATE.search(data):
            raise ArtifactError(f"{where} holds no PEM certificate (-----BEGIN CERTIFICATE----- ... -----END "
                                "CERTIFICATE-----); convert a DER file with `openssl x509 -inform der`. Nothing was "
                                "built")
