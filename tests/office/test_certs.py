"""The office's small CA (office/certs.py) and ``jaranijo office ca``: chains, names, file modes."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from office.certs import CaFiles, issue_client, issue_server, make_ca
from sync.cli import main
from sync.errors import ConfigError


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_is_self_signed_p256_for_about_ten_years(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert = load(ca.cert)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 3640 <= days <= 3660
    assert mode(ca.key) == 0o600


def test_an_existing_ca_is_not_replaced_by_accident(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    before = ca.cert.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        make_ca(tmp_path / "ca")
    assert ca.cert.read_bytes() == before
    make_ca(tmp_path / "ca", overwrite=True)
    assert ca.cert.read_bytes() != before


def test_server_certificate_chains_to_the_ca_and_names_every_host(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert_path, key_path = issue_server(ca, tmp_path / "srv",
                                       ["localhost", "127.0.0.1", "broker.example", "::1"])
    cert = load(cert_path)
    cert.verify_directly_issued_by(load(ca.cert))  # raises if the signature or issuer is wrong
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "broker.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                         ipaddress.ip_address("::1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc <= load(ca.cert).not_valid_after_utc
    assert mode(key_path) == 0o600


def test_client_certificate_names_the_kit(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert_path, key_path = issue_client(ca, tmp_path / "kit", "blitar-kit-01")
    cert = load(cert_path)
    cert.verify_directly_issued_by(load(ca.cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "blitar-kit-01"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert (cert_path.name, key_path.name) == ("blitar-kit-01.crt", "blitar-kit-01.key")
    assert mode(key_path) == 0o600


def test_a_certificate_of_another_ca_does_not_verify(tmp_path: Path) -> None:
    ours, theirs = make_ca(tmp_path / "ours"), make_ca(tmp_path / "theirs")
    cert_path, _ = issue_server(theirs, tmp_path / "srv", ["localhost"])
    with pytest.raises(InvalidSignature):  # same CA name, another key
        load(cert_path).verify_directly_issued_by(load(ours.cert))


def test_issuing_needs_a_ca_and_a_host(tmp_path: Path) -> None:
    missing = CaFiles(tmp_path / "none" / "ca.crt", tmp_path / "none" / "ca.key")
    with pytest.raises(ConfigError, match="does not exist") as caught:
        issue_server(missing, tmp_path / "srv", ["localhost"])
    assert "office ca init" in caught.value.text("en")
    with pytest.raises(ConfigError, match="at least one host"):
        issue_server(make_ca(tmp_path / "ca"), tmp_path / "srv", [" "])


# ---------------------------------------------------------------------------------------------
# jaranijo office ca init | server | client
# ---------------------------------------------------------------------------------------------


def test_cli_makes_ca_server_and_client_certificates(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir, srv, kits = tmp_path / "ca", tmp_path / "mosquitto", tmp_path / "kits"
    assert main(["office", "ca", "init", "--dir", str(ca_dir)]) == 0
    out = capsys.readouterr().out
    assert "CA kantor dibuat" in out and "Office CA made" in out  # Bahasa Indonesia, English
    assert main(["office", "ca", "server", "--ca", str(ca_dir), "--out", str(srv),
                 "--host", "broker.example", "--host", "203.0.113.7"]) == 0
    assert "Sertifikat server" in capsys.readouterr().out
    assert main(["office", "ca", "client", "--ca", str(ca_dir), "--out", str(kits),
                 "--kit", "blitar-kit-01"]) == 0
    assert "Sertifikat klien" in capsys.readouterr().out
    ca = load(ca_dir / "ca.crt")
    server = load(srv / "server.crt")
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("203.0.113.7")]
    load(kits / "blitar-kit-01.crt").verify_directly_issued_by(ca)
    for key in (ca_dir / "ca.key", srv / "server.key", kits / "blitar-kit-01.key"):
        assert mode(key) == 0o600


def test_cli_refusals_are_bilingual(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = tmp_path / "ca"
    assert main(["office", "ca", "server", "--ca", str(ca_dir), "--out", str(tmp_path / "s"),
                 "--host", "localhost"]) != 0
    err = capsys.readouterr().err
    assert "office ca init" in err and "tidak ada" in err  # --lang id is the default
    assert main(["office", "ca", "init", "--dir", str(ca_dir)]) == 0
    assert main(["--lang", "en", "office", "ca", "init", "--dir", str(ca_dir)]) != 0
    assert "already exists" in capsys.readouterr().err
    assert main(["office", "ca", "client", "--ca", str(ca_dir), "--out", str(tmp_path / "k"),
                 "--kit", "Not A Kit"]) != 0
    assert not (tmp_path / "k").exists()
