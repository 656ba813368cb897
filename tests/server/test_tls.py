"""winspectserv's certificate checks (winspect.server.tls) without `cryptography`: every check and
message, and its DER reader compared field by field with `cryptography` (which makes the test
certificates, as `winspect install` does) on the project's certificates and on unusual ones."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from winspect.deploy.pki import SERVER_NAMES, make_server_tls
from winspect.server.tls import TlsError, load_server_tls, read_certificate

UTC = datetime.timezone.utc
_OTHER = make_server_tls()


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _files(tmp_path: Path, cert_pem: bytes, key_pem: bytes) -> tuple[str, str]:
    return _write(tmp_path, "tls.crt", cert_pem), _write(tmp_path, "tls.key", key_pem)


def _pem_key(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, fmt: str = "pkcs8", password: bytes = b""
) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    private_format = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, private_format, encryption)


def _certificate(
    subject: x509.Name,
    not_after: datetime.datetime,
    san: list[x509.GeneralName] | None = None,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()), key


# ---------------------------------------------------------------- the project's certificates


def test_the_install_certificate_loads_with_its_names_subject_and_expiry(tmp_path: Path) -> None:
    tls = make_server_tls()
    loaded = load_server_tls(*_files(tmp_path, tls.cert_pem, tls.key_pem))
    cert = x509.load_pem_x509_certificate(tls.cert_pem)
    assert isinstance(loaded.credentials, grpc.ServerCredentials)
    assert loaded.dns_names == SERVER_NAMES
    assert loaded.subject == cert.subject.rfc4514_string() == f"CN={SERVER_NAMES[0]}"
    assert loaded.not_after == cert.not_valid_after_utc


def test_a_chain_reports_its_first_certificate(tmp_path: Path) -> None:
    tls = make_server_tls(names=("first.example",))
    loaded = load_server_tls(*_files(tmp_path, tls.cert_pem + tls.ca_pem, tls.key_pem))
    assert loaded.dns_names == ("first.example",)
    assert loaded.subject == "CN=first.example"


def test_the_server_never_imports_cryptography(tmp_path: Path) -> None:
    tls = make_server_tls()
    cert, key = _files(tmp_path, tls.cert_pem, tls.key_pem)
    script = (
        "import sys\n"
        "from winspect.server.tls import load_server_tls\n"
        f"load_server_tls({cert!r}, {key!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'OpenSSL')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- refusals, each with its message


def test_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    cert, key = _files(tmp_path, make_server_tls().cert_pem, make_server_tls().key_pem)
    with pytest.raises(TlsError, match=re.escape(f"the key {key} does not belong to the certificate {cert}")):
        load_server_tls(cert, key)


def test_key_of_another_type_is_refused(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert, key = _files(tmp_path, make_server_tls().cert_pem, _pem_key(rsa_key, "traditional"))
    with pytest.raises(TlsError, match="does not belong to the certificate"):
        load_server_tls(cert, key)


@pytest.mark.parametrize(
    "fmt",
    ["pkcs8", "traditional"],
)
def test_rsa_keys_in_both_formats_load(tmp_path: Path, fmt: str) -> None:
    cert, key = _certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa")]),
        datetime.datetime.now(UTC) + datetime.timedelta(days=365),
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )
    files = _files(tmp_path, cert.public_bytes(serialization.Encoding.PEM), _pem_key(key, fmt))
    assert load_server_tls(*files).subject == "CN=rsa"


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_encrypted_key_is_refused_without_asking_for_a_passphrase(tmp_path: Path, fmt: str) -> None:
    tls = make_server_tls()
    key = serialization.load_pem_private_key(tls.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert, key_file = _files(tmp_path, tls.cert_pem, _pem_key(key, fmt, password=b"secret"))
    with pytest.raises(TlsError, match=re.escape(f"{key_file} holds no unencrypted PEM private key")):
        load_server_tls(cert, key_file)


@pytest.mark.parametrize(
    "key_pem",
    [
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAABBBBCCCC\n-----END PRIVATE KEY-----\n",  # base64 but not a key
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",  # not base64
        _OTHER.cert_pem,  # a certificate given as the key
    ],
)
def test_file_without_a_private_key_is_refused(tmp_path: Path, key_pem: bytes) -> None:
    cert, key = _files(tmp_path, make_server_tls().cert_pem, key_pem)
    with pytest.raises(TlsError, match="holds no unencrypted PEM private key"):
        load_server_tls(cert, key)


@pytest.mark.parametrize(
    "cert_pem",
    [
        b"",
        b"-----BEGIN CERTIFICATE-----\nAAAABBBBCCCC\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",  # an empty SEQUENCE
        _OTHER.key_pem,  # a key given as the certificate
    ],
)
def test_file_without_a_certificate_is_refused(tmp_path: Path, cert_pem: bytes) -> None:
    cert, key = _files(tmp_path, cert_pem, make_server_tls().key_pem)
    with pytest.raises(TlsError, match=re.escape(f"{cert} holds no PEM certificate")):
        load_server_tls(cert, key)


def test_missing_files_are_named(tmp_path: Path) -> None:
    tls = make_server_tls()
    cert, key = _files(tmp_path, tls.cert_pem, tls.key_pem)
    with pytest.raises(
        TlsError, match=re.escape(f"cannot read the TLS certificate {tmp_path / 'none.crt'}: No such file")
    ):
        load_server_tls(str(tmp_path / "none.crt"), key)
    with pytest.raises(
        TlsError, match=re.escape(f"cannot read the TLS key {tmp_path / 'none.key'}: No such file")
    ):
        load_server_tls(cert, str(tmp_path / "none.key"))


# ---------------------------------------------------------------- expiry


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, str]]:
    return [
        (r.levelno, r.getMessage(), r.fields["not_after"])  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "winspect.server.tls"
    ]


def test_expired_certificate_is_logged_as_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.tls")
    start = datetime.datetime.now(UTC) - datetime.timedelta(days=800)
    tls = make_server_tls(now=start)
    loaded = load_server_tls(*_files(tmp_path, tls.cert_pem, tls.key_pem))
    assert loaded.not_after < datetime.datetime.now(UTC)
    assert _records(caplog) == [
        (
            logging.ERROR,
            "the TLS certificate has expired: clients will refuse this server; run `winspect rotate-certs`",
            loaded.not_after.isoformat(),
        )
    ]


def test_certificate_expiring_within_30_days_is_logged_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.tls")
    tls = make_server_tls(validity=datetime.timedelta(days=10))
    load_server_tls(*_files(tmp_path, tls.cert_pem, tls.key_pem))
    assert [(level, message) for level, message, _ in _records(caplog)] == [
        (logging.WARNING, "the TLS certificate expires soon; run `winspect rotate-certs`")
    ]


def test_certificate_valid_for_long_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.tls")
    tls = make_server_tls(validity=datetime.timedelta(days=31))
    load_server_tls(*_files(tmp_path, tls.cert_pem, tls.key_pem))
    assert _records(caplog) == []


# ---------------------------------------------------------------- the DER reader against cryptography

_ODD_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Baden-Württemberg"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "  leading spaces"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Acme, "Inc" + <Sons>; \\ trailing '),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#hash"),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
        x509.NameAttribute(NameOID.USER_ID, "uid-1"),
        x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Main St"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.com"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"),
        x509.NameAttribute(NameOID.COMMON_NAME, "日本語 name"),
    ]
)
_MULTI_VALUED = x509.Name(
    [
        x509.RelativeDistinguishedName(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "multi"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "valued"),
            ]
        ),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rdn")]),
    ]
)
_MANY_NAMES: list[x509.GeneralName] = [
    x509.DNSName("a.example"),
    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    x509.RFC822Name("someone@example.com"),
    x509.UniformResourceIdentifier("https://example.com/"),
    x509.DNSName("*.b.example"),
]


@pytest.mark.parametrize(
    ("subject", "not_after", "san"),
    [
        (_ODD_SUBJECT, datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC), None),  # UTCTime, no SAN
        (_MULTI_VALUED, datetime.datetime(2050, 1, 1, tzinfo=UTC), _MANY_NAMES),  # GeneralizedTime
        (x509.Name([]), datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), [x509.DNSName("x.example")]),
        (
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ip only")]),
            datetime.datetime(2030, 6, 15, 12, 0, 0, tzinfo=UTC),
            [x509.IPAddress(ipaddress.ip_address("::1"))],
        ),
    ],
)
def test_reader_agrees_with_cryptography(
    subject: x509.Name, not_after: datetime.datetime, san: list[x509.GeneralName] | None
) -> None:
    cert, _ = _certificate(subject, not_after, san)
    fields = read_certificate(cert.public_bytes(serialization.Encoding.DER))
    try:
        expected_dns = tuple(
            cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName
            )
        )
    except x509.ExtensionNotFound:
        expected_dns = ()
    assert fields.not_after == cert.not_valid_after_utc == not_after
    assert fields.dns_names == expected_dns
    assert fields.subject == cert.subject.rfc4514_string()


def test_reader_prints_a_value_that_is_not_a_string_as_hex_of_its_encoding() -> None:
    from cryptography.x509.name import _ASN1Type

    unique = x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01", _type=_ASN1Type.BitString)
    subject = x509.Name([unique, x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    cert, _ = _certificate(subject, datetime.datetime(2040, 1, 1, tzinfo=UTC))
    # RFC 4514 2.4: '#' and the hex of the whole BER encoding (cryptography prints the contents only).
    assert (
        read_certificate(cert.public_bytes(serialization.Encoding.DER)).subject == "CN=x,2.5.4.45=#03020001"
    )


def _der(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    count = (size.bit_length() + 7) // 8
    return bytes([tag, 0x80 | count]) + size.to_bytes(count, "big") + contents


def _contents(der: bytes) -> bytes:
    count = der[1] & 0x7F if der[1] & 0x80 else 0
    return der[2 + count :]


def test_reader_reads_a_version_1_certificate() -> None:
    # cryptography writes v3 only: the same certificate without its [0] version field is a v1 one
    # (no extensions either), as old tools still make.
    cert, _ = _certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "v1")]), datetime.datetime(2040, 1, 1, tzinfo=UTC)
    )
    tbs = _contents(cert.tbs_certificate_bytes)
    version = bytes.fromhex("a003020102")
    assert tbs.startswith(version)
    extensions = tbs.rindex(b"\xa3")  # the last field: [3] extensions
    v1_tbs = _der(0x30, tbs[len(version) : extensions])
    rest = _contents(cert.public_bytes(serialization.Encoding.DER))[len(cert.tbs_certificate_bytes) :]
    fields = read_certificate(_der(0x30, v1_tbs + rest))
    assert fields.subject == "CN=v1" and fields.dns_names == ()
    assert fields.not_after == datetime.datetime(2040, 1, 1, tzinfo=UTC)


_SAMPLE = make_server_tls().cert_pem


def _sample_der() -> bytes:
    return x509.load_pem_x509_certificate(_SAMPLE).public_bytes(serialization.Encoding.DER)


def test_every_truncation_is_a_value_error() -> None:
    der = _sample_der()
    for end in range(len(der)):
        with pytest.raises(ValueError):
            read_certificate(der[:end])
    with pytest.raises(ValueError):
        read_certificate(der + b"\x00")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_corrupted_bytes_give_fields_or_a_value_error_only(position: int, xor: int) -> None:
    der = bytearray(_sample_der())
    der[position % len(der)] ^= xor
    with contextlib.suppress(ValueError):
        read_certificate(bytes(der))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_a_value_error(data: bytes) -> None:
    try:
        read_certificate(data)
    except ValueError:
        return
    raise AssertionError("random bytes read as a certificate")
