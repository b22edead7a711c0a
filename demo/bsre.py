"""A stand-in for BSrE (Balai Sertifikasi Elektronik) in the demo: a throwaway certificate
authority and the head's signing certificate under it, and the signing step that BSrE's
service does for the Kepala Dinas (an incremental update into the draft's empty
signature field, ``office.letters.FIELD_NAME``).

Only the demo and the tests use this: in the office the head signs in BSrE's own service,
and the web app trusts BSrE's real root (``JARANIJO_TTE_ROOTS``). Keys are made fresh
each run with ``cryptography`` and live in the demo's temporary folder.
"""

from __future__ import annotations

import datetime
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class DemoAuthority:
    """A root CA (its PEM file is what the office is told to trust) and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path

    @classmethod
    def create(cls, folder: Path, name: str = "BSrE Uji Coba (demo Jaran Ijo)") -> DemoAuthority:
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo Jaran Ijo")])
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))
        cert_file = folder / "bsre-demo-root.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, cert_file)

    def issue_signer(self, folder: Path, holder: str) -> tuple[Path, Path]:
        """The head's certificate (digital signature, non-repudiation) and key files."""
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, holder),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pemerintah Kabupaten Blitar"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ID")]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256()))
        key_file, cert_file = folder / "head-signer.key", folder / "head-signer.pem"
        key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key_file, cert_file


def sign_as_bsre(draft: bytes, authority: DemoAuthority, key_file: Path,
                 cert_file: Path) -> bytes:
    """``draft`` signed into its prepared field, as BSrE's service returns it."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    from office.letters import FIELD_NAME

    # pyHanko's stamp layout warns about its own default box; nothing the demo can change.
    logging.getLogger("pyhanko.pdf_utils.layout").setLevel(logging.ERROR)
    signer = signers.SimpleSigner.load(str(key_file), str(cert_file),
                                       ca_chain_files=(str(authority.cert_file),))
    if signer is None:
        raise ValueError("the demo signer's key or certificate cannot be read")
    writer = IncrementalPdfFileWriter(io.BytesIO(draft))
    meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, reason="TTE Kepala Dinas")
    return bytes(signers.PdfSigner(meta, signer=signer).sign_pdf(writer).getvalue())
