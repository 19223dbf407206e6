"""Detached OpenPGP signatures (RFC 4880 / RFC 9580) of downloaded tarballs,
checked with GnuPG's verify-only tool `gpgv` (Debian's gpgv package: apt itself
depends on it). gpgv gets a keyring of exactly the team's configured key, an
empty home directory (no trust database, no agent, no key server) and reports
through --status-fd; the signature counts only when gpgv says VALIDSIG and the
primary key's fingerprint is the configured one."""

from __future__ import annotations

import base64
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArtifactError

GPGV = "gpgv"


@dataclass(frozen=True)
class SigningKey:
    """The team's key: its file (ASCII-armored or binary) and the fingerprint it must have."""

    path: Path
    shown: str  # as the manifest names it
    fingerprint: str  # 40 upper-case hex digits

    def packets(self) -> bytes:
        """The key as OpenPGP packets. Raises ArtifactError when it cannot be read or is not a key."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"cannot read the signing key {self.shown}: {exc.strerror or exc}; fix "
                                "update.adoptium.signing_key in the manifest") from None
        return dearmor(data, self.shown)

    @property
    def spaced(self) -> str:
        """3B04 D753 ... F04B, as OpenPGP tools print it."""
        return " ".join(self.fingerprint[i:i + 4] for i in range(0, 40, 4))


def normal_fingerprint(text: str) -> str:
    """'3b04 d753 ...' -> '3B04D753...'."""
    return re.sub(r"\s+", "", text).upper()


def dearmor(data: bytes, what: str) -> bytes:
    """OpenPGP packets from an ASCII-armored block (RFC 4880 section 6.2), or `data`
    as it is when it is binary already. Raises ArtifactError when it is neither."""
    if data[:1] and data[0] & 0x80:
        return data
    text = data.decode("ascii", "replace")
    match = re.search(r"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(.*?)-----END PGP PUBLIC KEY BLOCK-----", text,
                      re.DOTALL)
    if match is None:
        raise ArtifactError(f"{what} is not an OpenPGP public key (neither binary nor an ASCII-armored "
                            "PUBLIC KEY BLOCK); export it with `gpg --export --armor FINGERPRINT`")
    block = match.group(1).replace("\r", "")
    head, blank, body = block.partition("\n\n")  # armor headers (Comment: ...) end at the first blank line
    lines = [line.strip() for line in (body if blank else head).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("=")]  # the optional CRC24 line
    try:
        return base64.b64decode("".join(lines), validate=True)
    except ValueError:
        raise ArtifactError(f"{what}: its ASCII armor is damaged (not base64); export the key again") from None


def verify(data: Path, signature: bytes, key: SigningKey, what: str,
           environ: Mapping[str, str] | None = None) -> None:
    """Check that `signature` is a good detached signature of the file `data` by
    `key`. Raises ArtifactError, naming `what`, when it is not, or when gpgv is missing."""
    packets = key.packets()
    with tempfile.TemporaryDirectory(prefix="javabase-gpgv-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        keyring, sig = Path(tmp) / "key.gpg", Path(tmp) / "file.sig"
        keyring.write_bytes(packets)
        sig.write_bytes(signature)
        command = [GPGV, "--homedir", str(home), "--status-fd", "1", "--keyring", str(keyring), str(sig), str(data)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300,
                                  env={**(environ or {}), "LC_ALL": "C"})
        except FileNotFoundError:
            raise ArtifactError(f"gpgv is not installed, so {what} cannot be checked against {key.shown}; install "
                                "Debian's gpgv (apt-get install gpgv) and run again; nothing was changed") from None
    _judge(done.returncode, done.stdout, key, what)


def _judge(code: int, status: str, key: SigningKey, what: str) -> None:
    words = [line.split() for line in status.splitlines() if line.startswith("[GNUPG:] ")]
    valid = [w for w in words if len(w) > 2 and w[1] == "VALIDSIG"]
    primary = {normal_fingerprint(w[11] if len(w) > 11 else w[2]) for w in valid}
    revoked = any(w[1] == "REVKEYSIG" for w in words if len(w) > 1)
    if code == 0 and primary == {key.fingerprint} and not revoked:
        return
    if any(w[1] == "BADSIG" for w in words if len(w) > 1):
        reason = "it is a BAD signature: the file is not what the key signed"
    elif revoked:
        reason = f"the key {key.spaced} is revoked"
    elif primary and primary != {key.fingerprint}:
        reason = f"it was made by {', '.join(sorted(primary))}, not by {key.spaced}"
    else:
        missing = [w[2] for w in words if len(w) > 2 and w[1] in ("NO_PUBKEY", "ERRSIG")]
        reason = (f"it was made by key {missing[0]}, not by {key.spaced}" if missing
                  else f"gpgv could not check it (exit {code})")
    raise ArtifactError(f"{what}: the signature does not verify against {key.shown}: {reason}; nothing was changed")
