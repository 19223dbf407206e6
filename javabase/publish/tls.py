"""TLS for registries, the engine's way: the system's CAs (or SSL_CERT_FILE),
plus every *.crt in <certs.d>/<host[:port]>/ as a CA for that registry, and a
client.cert + client.key pair there for mutual TLS. <certs.d> is
$JAVABASE_CERTS_DIR, else /etc/docker/certs.d (where the engine reads it too),
read by javabase.settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ..errors import RegistryError
from ..settings import Environment


@dataclass(frozen=True)
class TLSConfig:
    context: ssl.SSLContext
    ca: str  # which CAs verify the registry, for people
    host_dir: Path  # where this registry's CA belongs


def for_host(host: str, env: Environment) -> TLSConfig:
    """The TLS context to talk to `host` (HOST or HOST:PORT). Raises RegistryError
    when a CA or client certificate there cannot be read."""
    bundle = env.ssl_cert_file
    try:
        context = ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(f"SSL_CERT_FILE {bundle} cannot be read as a CA bundle ({exc}); fix the path") from None
    host_dir = env.certs_dir / host
    extra = sorted(host_dir.glob("*.crt")) if host_dir.is_dir() else []
    for ca in extra:
        try:
            context.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"{ca} is not a PEM CA certificate ({exc}); fix or remove it") from None
    cert, key = host_dir / "client.cert", host_dir / "client.key"
    if cert.is_file() and key.is_file():
        try:
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"{cert} and {key} are not a client certificate and its key ({exc})") from None
    system = f"SSL_CERT_FILE ({bundle})" if bundle else "the system's CAs"
    return TLSConfig(context, " + ".join([*(str(c) for c in extra), system]), host_dir)


def verify_failure(host: str, error: ssl.SSLCertVerificationError, config: TLSConfig) -> RegistryError:
    """One line: the host, why the certificate does not verify, and where its CA goes."""
    code = getattr(error, "verify_code", 0)
    reason = {
        10: "the certificate has expired",
        18: "the certificate is self-signed and not trusted",
        19: "the certificate was signed by a CA javabase does not know",
        20: "the certificate was signed by a CA javabase does not know",
        62: f"the certificate is not for {host.rsplit(':', 1)[0]}",
        64: f"the certificate is not for {host.rsplit(':', 1)[0]}",
    }.get(code, getattr(error, "verify_message", None) or str(error))
    return RegistryError(f"registry {host}: TLS: {reason}; put the CA that signed its certificate in "
                         f"{config.host_dir}/ca.crt (or a bundle in SSL_CERT_FILE), then run again")
