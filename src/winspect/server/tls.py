"""The server's TLS identity: its certificate and key files, checked, as gRPC server credentials.

`winspect install` makes the certificate (signed by winspect's CA, naming
the service identity winspectserv.winspect-system.svc) and keeps it with
its key in the Secret winspect-system/winspect-tls, which only the
DaemonSet mounts. Clients verify it against the CA from the ConfigMap
winspect-system/winspect-ca, so one certificate serves every node.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger("winspect.server.tls")

# Warn in the log when the certificate expires sooner than this.
EXPIRY_WARNING = datetime.timedelta(days=30)


class TlsError(ValueError):
    """The certificate or key cannot be used (the server refuses to start)."""


@dataclass(frozen=True)
class ServerTls:
    credentials: grpc.ServerCredentials
    not_after: datetime.datetime
    dns_names: tuple[str, ...]
    subject: str


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None


def load_server_tls(cert_file: str, key_file: str) -> ServerTls:
    """The credentials for `cert_file` (PEM, the server certificate first, then any chain) and `key_file`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_pem = _read(cert_file, "certificate")
    key_pem = _read(key_file, "key")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TlsError(f"{cert_file} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TlsError(f"{key_file} holds no unencrypted PEM private key") from None
    cert = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.PEM, public) != key.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ):
        raise TlsError(f"the key {key_file} does not belong to the certificate {cert_file}")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    not_after = cert.not_valid_after_utc
    now = datetime.datetime.now(datetime.timezone.utc)
    if not_after <= now:
        log.error(
            "the TLS certificate has expired: clients will refuse this server; run `winspect rotate-certs`",
            extra={"fields": {"certificate": cert_file, "not_after": not_after.isoformat()}},
        )
    elif not_after - now < EXPIRY_WARNING:
        log.warning(
            "the TLS certificate expires soon; run `winspect rotate-certs`",
            extra={"fields": {"certificate": cert_file, "not_after": not_after.isoformat()}},
        )
    return ServerTls(
        credentials=grpc.ssl_server_credentials([(key_pem, cert_pem)]),
        not_after=not_after,
        dns_names=dns,
        subject=cert.subject.rfc4514_string(),
    )
