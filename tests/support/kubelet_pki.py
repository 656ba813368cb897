"""Certificates between a real kube-apiserver and the fake kubelets: one CA signing each kubelet's
serving certificate (for its node's IP) and the client certificate the API server presents to them."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The user name kube-apiserver's kubelet client certificate carries (as kubeadm names it).
APISERVER_CLIENT_CN = "kube-apiserver-kubelet-client"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_key(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class KubeletPki:
    """A CA kept (with its key) in `directory`, issuing kubelet and API-server certificates."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self._start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubelet-ca")])
        ca = (
            self._builder(self._name, self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = directory / "kubelet-ca.crt"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._start)
            .not_valid_after(self._start + datetime.timedelta(days=2))
        )

    def _issue(
        self, stem: str, cn: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]), key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = Issued(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(issued.key, _pem_key(key))
        return issued

    def kubelet_serving(self, node: str, ip: str) -> Issued:
        """The serving certificate of `node`'s kubelet: its IP (the API server dials the InternalIP)."""
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName(node)]
        return self._issue(f"kubelet-{node}", node, ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def apiserver_client(self) -> Issued:
        return self._issue(
            "apiserver-kubelet-client", APISERVER_CLIENT_CN, ExtendedKeyUsageOID.CLIENT_AUTH, []
        )
