"""winspect's certificate authority and the node servers' certificate (cryptography, ECDSA P-256).

One CA, one server certificate for every node: it names the service
identity (SERVER_NAME, winspectserv.winspect-system.svc), never a node, so
nodes joining later need nothing new. The CA's private key signs the server
certificate and is then thrown away: nothing can sign another certificate
the clients would trust, and rotation (`winspect rotate-certs`) makes a new
CA and certificate together.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winspect.kube.names import NAMESPACE, SERVER_NAME

# Both live two years; install renews them when less than RENEW_BEFORE is left.
VALIDITY = datetime.timedelta(days=730)
RENEW_BEFORE = datetime.timedelta(days=30)
SERVER_NAMES = (SERVER_NAME, f"{SERVER_NAME}.cluster.local", f"winspectserv.{NAMESPACE}")


@dataclass(frozen=True)
class ServerTls:
    """A new CA certificate and the server certificate with its key (PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_server_tls(
    names: tuple[str, ...] = SERVER_NAMES,
    validity: datetime.timedelta = VALIDITY,
    now: datetime.datetime | None = None,
) -> ServerTls:
    """A new CA and a server certificate for the DNS `names`, signed by it (the CA key is discarded)."""
    start = (now or datetime.datetime.now(datetime.timezone.utc)) - datetime.timedelta(minutes=5)
    return issue_server_tls(
        f"winspect CA {start.strftime('%Y-%m-%d')}",
        names[0],
        [x509.DNSName(n) for n in names],
        start,
        start + validity,
    )


def issue_server_tls(
    ca_cn: str,
    server_cn: str,
    sans: list[x509.GeneralName],
    start: datetime.datetime,
    until: datetime.datetime,
) -> ServerTls:
    """A new CA (ECDSA P-256, may sign server certificates only) and a TLS server certificate
    for `sans` signed by it, both valid from `start` to `until`; the CA key is discarded."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(ca_cn)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_cn))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ServerTls(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@dataclass(frozen=True)
class CertificateInfo:
    not_after: datetime.datetime
    dns_names: tuple[str, ...]
    fingerprint: str  # SHA-256 of the DER, hex


def certificate_info(pem: bytes) -> CertificateInfo:
    """Expiry, DNS names and fingerprint of the first certificate in `pem` (ValueError if none)."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertificateInfo(cert.not_valid_after_utc, dns, hashlib.sha256(der).hexdigest())


def signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Whether the first certificate of `cert_pem` was issued by a certificate in `ca_pem`."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    for ca in x509.load_pem_x509_certificates(ca_pem):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
