"""The server's TLS identity: its certificate and key files, checked, as gRPC server credentials.

`winspect install` makes the certificate (signed by winspect's CA, naming
the service identity winspectserv.winspect-system.svc) and keeps it with
its key in the Secret winspect-system/winspect-tls, which only the
DaemonSet mounts. Clients verify it against the CA from the ConfigMap
winspect-system/winspect-ca, so one certificate serves every node.

Only the standard library checks them, on purpose: importing `cryptography`
here cost every node server about 11 MB of resident memory for checks run
once at start-up (docs/performance.md). OpenSSL, through `ssl`,
parses the certificates and checks that the key belongs to the first one;
a small DER reader (`read_certificate`) takes the expiry, the DNS names and
the subject out of it. The CLI side (winspect.deploy.pki) keeps using
`cryptography` to make the certificates.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

log = logging.getLogger("winspect.server.tls")

# Warn in the log when the certificate expires sooner than this.
EXPIRY_WARNING = datetime.timedelta(days=30)

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_KEY_LABELS = (b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY")


class TlsError(ValueError):
    """The certificate or key cannot be used (the server refuses to start)."""


@dataclass(frozen=True)
class ServerTls:
    credentials: grpc.ServerCredentials
    not_after: datetime.datetime
    dns_names: tuple[str, ...]
    subject: str


# ---------------------------------------------------------------- DER (X.690), just what X.509 needs


def _elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, contents) of the DER elements that make up `data`, in order; ValueError if malformed."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("truncated DER element")
        tag, length = data[pos], data[pos + 1]
        if tag & 0x1F == 0x1F:
            raise ValueError("multi-byte DER tags are not used in certificates")
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if not 1 <= count <= 4 or pos + count > len(data):
                raise ValueError("bad DER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise ValueError("truncated DER element")
        out.append((tag, data[pos : pos + length]))
        pos += length
    return out


def _one(data: bytes, tag: int) -> bytes:
    """The contents of `data`, which must be exactly one element with `tag`."""
    elements = _elements(data)
    if len(elements) != 1 or elements[0][0] != tag:
        raise ValueError(f"expected one DER element of tag {tag:#04x}")
    return elements[0][1]


def _oid(contents: bytes) -> str:
    """An OBJECT IDENTIFIER's contents as a dotted string."""
    if not contents or contents[-1] & 0x80:
        raise ValueError("bad OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18


def _time(tag: int, contents: bytes) -> datetime.datetime:
    """A UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 requires them."""
    text = contents.decode("ascii")
    digits = {_UTC_TIME: 12, _GENERALIZED_TIME: 14}.get(tag)
    if digits is None or len(text) != digits + 1 or not text[:-1].isdigit() or text[-1] != "Z":
        raise ValueError(f"bad certificate time {text!r}")
    if tag == _UTC_TIME:
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    return datetime.datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[8:10]),
        int(text[10:12]),
        int(text[12:14]),
        tzinfo=datetime.timezone.utc,
    )


# RFC 4514 short names (those `cryptography`'s rfc4514_string uses); other types print as dotted OIDs.
_ATTRIBUTE_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# DirectoryString and friends: UTF8String, NumericString, PrintableString, TeletexString, IA5String,
# VisibleString, UniversalString, BMPString.
_STRING_CODECS = {
    0x0C: "utf-8",
    0x12: "ascii",
    0x13: "ascii",
    0x14: "latin-1",
    0x16: "ascii",
    0x1A: "ascii",
    0x1C: "utf-32-be",
    0x1E: "utf-16-be",
}


def _escape(value: str) -> str:
    """An attribute value escaped as RFC 4514 (section 2.4) asks."""
    if not value:
        return ""
    for char in '\\"+,;<>':
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def _encode(tag: int, contents: bytes) -> bytes:
    """One DER element."""
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    count = (size.bit_length() + 7) // 8
    return bytes([tag, 0x80 | count]) + size.to_bytes(count, "big") + contents


def _name(contents: bytes) -> str:
    """A Name (RDNSequence) as an RFC 4514 string: last RDN first, multi-valued RDNs joined by '+'."""
    rdns: list[str] = []
    for tag, rdn in _elements(contents):
        if tag != 0x31:
            raise ValueError("a Name holds SETs")
        parts: list[str] = []
        for attr_tag, attr in _elements(rdn):
            if attr_tag != 0x30:
                raise ValueError("an RDN holds SEQUENCEs")
            (oid_tag, oid), (value_tag, value) = _elements(attr)
            if oid_tag != 0x06:
                raise ValueError("an attribute starts with its type")
            dotted = _oid(oid)
            codec = _STRING_CODECS.get(value_tag)
            # Not a string: RFC 4514's '#' and the hex of the value's encoding.
            text = "#" + _encode(value_tag, value).hex() if codec is None else _escape(value.decode(codec))
            parts.append(f"{_ATTRIBUTE_NAMES.get(dotted, dotted)}={text}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))


_SUBJECT_ALT_NAME = "2.5.29.17"
_DNS_NAME = 0x82  # GeneralName dNSName, [2] IMPLICIT IA5String


@dataclass(frozen=True)
class CertificateFields:
    """What the server reports of its certificate."""

    not_after: datetime.datetime
    dns_names: tuple[str, ...]
    subject: str  # RFC 4514


def read_certificate(der: bytes) -> CertificateFields:
    """notAfter, the DNS names of subjectAltName and the subject of one X.509 certificate (DER).

    Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }; tbsCertificate
    ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject,
    subjectPublicKeyInfo, [1] [2] unique ids OPTIONAL, [3] extensions OPTIONAL } (RFC 5280 4.1).
    ValueError when `der` is not one."""
    try:
        certificate = _elements(_one(der, 0x30))
        if len(certificate) != 3 or certificate[0][0] != 0x30:
            raise ValueError("a certificate is three elements, the first a SEQUENCE")
        fields = _elements(certificate[0][1])
        if fields and fields[0][0] == 0xA0:
            fields = fields[1:]
        if len(fields) < 6 or fields[3][0] != 0x30 or fields[4][0] != 0x30:
            raise ValueError("not a TBSCertificate")
        validity = _elements(fields[3][1])
        if len(validity) != 2:
            raise ValueError("validity is two times")
        not_after = _time(*validity[1])
        subject = _name(fields[4][1])
        dns: list[str] = []
        for tag, body in fields[6:]:
            if tag != 0xA3:
                continue
            for ext_tag, extension in _elements(_one(body, 0x30)):
                parts = _elements(extension) if ext_tag == 0x30 else []
                if len(parts) < 2 or parts[0][0] != 0x06 or parts[-1][0] != 0x04:
                    raise ValueError("bad extension")
                if _oid(parts[0][1]) == _SUBJECT_ALT_NAME:
                    names = _elements(_one(parts[-1][1], 0x30))
                    dns += [value.decode("ascii") for name_tag, value in names if name_tag == _DNS_NAME]
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"not an X.509 certificate: {exc}") from None
    return CertificateFields(not_after, tuple(dns), subject)


# ---------------------------------------------------------------- PEM files


def _pem_blocks(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """The (label, headers, DER) of each PEM block in `data` (headers: RFC 1421's, in old encrypted keys)."""
    out: list[tuple[bytes, bytes, bytes]] = []
    for match in _PEM_BLOCK.finditer(data):
        body = match.group(2)
        headers = b""
        if b":" in body.split(b"\n", 1)[0]:
            headers, _, body = body.replace(b"\r\n", b"\n").partition(b"\n\n")
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except binascii.Error:
            continue
        out.append((match.group(1), headers, der))
    return out


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None


def _no_password() -> bytes:
    # Never let OpenSSL ask a terminal for a passphrase (encrypted keys are refused before this).
    return b""


def load_server_tls(cert_file: str, key_file: str) -> ServerTls:
    """The credentials for `cert_file` (PEM, the server certificate first, then any chain) and `key_file`."""
    cert_pem = _read(cert_file, "certificate")
    key_pem = _read(key_file, "key")
    chain = [der for label, _, der in _pem_blocks(cert_pem) if label == b"CERTIFICATE"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        if not chain:
            raise ValueError("no CERTIFICATE block")
        fields = read_certificate(chain[0])
        context.load_verify_locations(cadata=b"".join(chain))  # OpenSSL parses every certificate
    except (ValueError, ssl.SSLError):
        raise TlsError(f"{cert_file} holds no PEM certificate") from None
    keys = [(label, headers) for label, headers, _ in _pem_blocks(key_pem) if label in _KEY_LABELS]
    if not keys or any(b"ENCRYPTED" in headers for _, headers in keys):
        raise TlsError(f"{key_file} holds no unencrypted PEM private key")
    try:
        # ssl takes file names only: OpenSSL reads both again and checks that the key is the certificate's.
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except ssl.SSLError as exc:
        if exc.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):  # same type / another type
            raise TlsError(f"the key {key_file} does not belong to the certificate {cert_file}") from None
        raise TlsError(f"{key_file} holds no unencrypted PEM private key") from None
    except OSError as exc:
        raise TlsError(f"cannot read the TLS certificate and key: {exc.strerror or exc}") from None
    now = datetime.datetime.now(datetime.timezone.utc)
    if fields.not_after <= now:
        log.error(
            "the TLS certificate has expired: clients will refuse this server; run `winspect rotate-certs`",
            extra={"fields": {"certificate": cert_file, "not_after": fields.not_after.isoformat()}},
        )
    elif fields.not_after - now < EXPIRY_WARNING:
        log.warning(
            "the TLS certificate expires soon; run `winspect rotate-certs`",
            extra={"fields": {"certificate": cert_file, "not_after": fields.not_after.isoformat()}},
        )
    return ServerTls(
        credentials=grpc.ssl_server_credentials([(key_pem, cert_pem)]),
        not_after=fields.not_after,
        dns_names=fields.dns_names,
        subject=fields.subject,
    )
