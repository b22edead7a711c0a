"""A small certificate authority for the office broker: CA, server and kit certificates.

Kits reach the office's Mosquitto over the mobile network; the link is TLS
(port 8883) so the kit's broker password never crosses it in clear. Each kit
trusts exactly one CA certificate, the office's, written into its
``[mqtt] ca_file`` at provisioning. Client certificates are optional: with
``require_certificate true`` on the listener a kit needs one *and* its
password (the certificate is an extra factor, not the login).

Example::

    ca = make_ca(Path("/etc/jaranijo/ca"))
    issue_server(ca, Path("/etc/mosquitto/certs"), ["broker.example", "203.0.113.7"])
    issue_client(ca, Path("/srv/kits/blitar-kit-01"), "blitar-kit-01")

Keys are EC P-256, written mode 0600; certificates are PEM. Nothing here
talks to the network.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync.errors import ConfigError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CA_DAYS = 3650  # about ten years: the CA certificate sits in every kit's configuration
LEAF_DAYS = 825  # the longest TLS clients commonly accept for a server certificate
CA_NAME = "Jaran Ijo office CA"


@dataclass(frozen=True)
class CaFiles:
    """Where the office CA's certificate and secret key are."""

    cert: Path
    key: Path

    def load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The CA certificate and key, or ConfigError naming the file that is missing."""
        for path in (self.cert, self.key):
            if not path.is_file():
                raise ConfigError(
                    id=f"Berkas CA kantor {path} tidak ada",
                    en=f"Office CA file {path} does not exist",
                    hint_id="Jalankan dulu 'jaranijo office ca init --dir FOLDER'",
                    hint_en="Run 'jaranijo office ca init --dir FOLDER' first",
                )
        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(
                id=f"{self.key}: bukan kunci EC", en=f"{self.key}: not an EC key",
                hint_id="Buat CA baru dengan 'jaranijo office ca init'",
                hint_en="Make a new CA with 'jaranijo office ca init'",
            )
        return cert, key


def make_ca(directory: Path, *, name: str = CA_NAME, days: int = CA_DAYS,
            overwrite: bool = False) -> CaFiles:
    """Create a self-signed CA (EC P-256, ``days`` long) as ``ca.crt`` and ``ca.key``.

    Refuses to replace an existing CA unless ``overwrite``: every kit trusts the old one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = CaFiles(directory / CA_CERT, directory / CA_KEY)
    if not overwrite and (files.cert.exists() or files.key.exists()):
        raise ConfigError(
            id=f"CA kantor sudah ada di {directory}",
            en=f"An office CA already exists in {directory}",
            hint_id="Semua kit mempercayai CA itu; pakai yang ada atau pilih folder lain",
            hint_en="Every kit trusts that CA; keep it or choose another folder",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def issue_server(ca: CaFiles, directory: Path, hosts: Iterable[str], *,
                 name: str = "server", days: int = LEAF_DAYS) -> tuple[Path, Path]:
    """A server certificate for the broker, valid for ``hosts`` (DNS names and IP addresses).

    Writes ``NAME.crt`` and ``NAME.key`` (0600) in ``directory``; returns ``(cert, key)``.
    """
    hosts = [h.strip() for h in hosts if h.strip()]
    if not hosts:
        raise ConfigError(
            id="Sertifikat server perlu sedikitnya satu nama host atau alamat IP",
            en="A server certificate needs at least one host name or IP address",
            hint_id="Beri nama yang dipakai kit, mis. --host broker.contoh.id --host 127.0.0.1",
            hint_en="Give the names kits connect to, e.g. --host broker.example --host 127.0.0.1",
        )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return _issue(ca, directory, name, hosts[0], names, ExtendedKeyUsageOID.SERVER_AUTH, days)


def issue_client(ca: CaFiles, directory: Path, name: str, *,
                 days: int = LEAF_DAYS) -> tuple[Path, Path]:
    """A client certificate with CN ``name`` (the kit id), as ``NAME.crt`` and ``NAME.key``.

    Goes into the kit's ``[mqtt] cert_file`` and ``key_file``; the kit still logs in
    with its password.
    """
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(
            id=f"Nama sertifikat klien {name!r} tidak sah",
            en=f"Client certificate name {name!r} is not valid",
            hint_id="Pakai id kit, mis. blitar-kit-01",
            hint_en="Use the kit id, e.g. blitar-kit-01",
        )
    return _issue(ca, directory, name, name, [], ExtendedKeyUsageOID.CLIENT_AUTH, days)


def _issue(ca: CaFiles, directory: Path, file_name: str, common_name: str,
           sans: list[x509.GeneralName], usage: x509.ObjectIdentifier,
           days: int) -> tuple[Path, Path]:
    ca_cert, ca_key = ca.load()
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), _not_after(ca_cert)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{file_name}.crt", directory / f"{file_name}.key"
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    """The end of ``cert``'s validity, aware (``not_valid_after_utc`` is cryptography 42+)."""
    aware = getattr(cert, "not_valid_after_utc", None)
    if isinstance(aware, datetime.datetime):
        return aware
    return cert.not_valid_after.replace(tzinfo=datetime.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)
