"""A throwaway certificate authority and a serving certificate for the sandbox API.

ECDSA P-256 keys: generated in milliseconds, accepted by Go (kubectl) and OpenSSL.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from winspect.deploy.pki import issue_server_tls


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> tuple[Path, Path, Path]:
        """Write ca.crt, apiserver.crt and apiserver.key (0600) into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        ca, crt, key = directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key"
        ca.write_bytes(self.ca_pem)
        crt.write_bytes(self.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)
        return ca, crt, key


def make_tls(ips: list[str], dns_names: list[str], days: int = 365) -> TlsMaterial:
    """A new CA and a serving certificate for `ips` and `dns_names` signed by it."""
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(d) for d in dns_names]
    made = issue_server_tls(
        "winspect-sandbox-ca", "kube-apiserver", sans, start, start + datetime.timedelta(days=days)
    )
    return TlsMaterial(made.ca_pem, made.cert_pem, made.key_pem)
