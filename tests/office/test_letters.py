"""The reply letter (SOP step 4): the draft PDF, and the check of the copy the head signed.

The head signs in BSrE's service, outside the system; here a test certificate authority
made with ``cryptography`` stands in for BSrE and pyHanko's SimpleSigner for the signing
service. Every way a returned file can be wrong gets its own test and its own reason.
"""

from __future__ import annotations

import datetime
import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers

from office import letters
from office.letters import FIELD_NAME, ReplyLetter, draft_digest, render_reply, verify_signed
from sync.errors import ValidationError
from tests.browser import ARTEFACTS

HEAD = "Drs. BUDI SANTOSO, M.Si."
NOW = datetime.datetime.now(datetime.UTC)


# ---------------------------------------------------------------------------------------
# A test certificate authority standing in for BSrE


@dataclass(frozen=True)
class Authority:
    """A root CA: its certificate (PEM file and object) and key, to issue signers."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path

    def issue(
        self,
        folder: Path,
        name: str,
        *,
        not_before: datetime.datetime = NOW - datetime.timedelta(days=1),
        not_after: datetime.datetime = NOW + datetime.timedelta(days=365),
    ) -> signers.SimpleSigner:
        """A signer certificate for ``name`` under this CA, as a pyHanko signer."""
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pemerintah Kabupaten Blitar"),
                x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            ]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=True, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        key_file, cert_file = folder / "signer.key", folder / "signer.crt"
        key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        signer = signers.SimpleSigner.load(
            str(key_file), str(cert_file), ca_chain_files=(str(self.cert_file),)
        )
        assert signer is not None
        return signer


def make_authority(folder: Path, name: str) -> Authority:
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Uji Coba Jaran Ijo"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=30))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "root.crt"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(cert=cert, key=key, cert_file=cert_file)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("letters")


@pytest.fixture(scope="module")
def bsre(folder: Path) -> Authority:
    return make_authority(folder / "ca", "Uji BSrE Root CA")


@pytest.fixture(scope="module")
def head(bsre: Authority, folder: Path) -> signers.SimpleSigner:
    return bsre.issue(folder / "head", HEAD)


def sample_letter(**changes: object) -> ReplyLetter:
    letter = ReplyLetter(
        number="400.12.3.3/1234/409.112/2026",
        date=datetime.date(2026, 12, 1),
        addressee="Kepala Desa Kemloko",
        request_number="470/045/409.112.03/2026",
        request_date=datetime.date(2026, 11, 20),
        visit_date=datetime.date(2026, 12, 10),
        visit_start=datetime.time(8, 0),
        visit_end=datetime.time(12, 0),
        recording_point="Kantor Desa Kemloko dan rumah ke rumah",
        residents=12,
        officers=3,
        head_name=HEAD,
        head_title="Pembina Utama Muda (IV/c)",
        head_nip="197001011990031001",
        copies=("Bupati Blitar (sebagai laporan)", "Camat Nglegok", "Arsip"),
    )
    return replace(letter, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def draft() -> bytes:
    return render_reply(sample_letter())


Edit = Callable[[IncrementalPdfFileWriter], None]


def sign(pdf: bytes, signer: signers.SimpleSigner, edit: Edit | None = None) -> bytes:
    """Sign ``pdf`` into the prepared field as an incremental update, as BSrE's service
    would; ``edit`` changes the document in the same update, before the signature."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if edit is not None:
        edit(writer)
    meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, reason="TTE Kepala Dinas")
    return signers.PdfSigner(meta, signer=signer).sign_pdf(writer).getvalue()


def stamp_page(writer: IncrementalPdfFileWriter) -> None:
    """Draw over page 1: the kind of change nobody may make to a signed letter."""
    stream = generic.StreamObject(stream_data=b"q 1 0 0 rg 100 400 200 50 re f Q")
    writer.add_stream_to_page(0, writer.add_object(stream))


def updated(pdf: bytes, edit: Edit) -> bytes:
    """``pdf`` plus one incremental update made by ``edit``."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    edit(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------
# The draft


def test_draft_is_one_a4_page_with_an_empty_signature_field_over_the_box(draft: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(draft))
    assert int(reader.root["/Pages"]["/Count"]) == 1
    media_box = reader.root["/Pages"]["/Kids"][0]["/MediaBox"]
    width, height = float(media_box[2]), float(media_box[3])
    assert (round(width), round(height)) == (595, 842)  # A4 in pt

    found = list(fields.enumerate_sig_fields(reader, filled_status=False))
    assert [name for name, _value, _ref in found] == [FIELD_NAME]
    widget = found[0][2].get_object()
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    # bottom right quarter of the page, about the size of the dashed box (6.8 x 2.3 cm)
    assert x1 > width / 2 and y2 < height / 2
    assert 180 < x2 - x1 < 200 and 60 < y2 - y1 < 70
    assert reader.embedded_signatures == []


def test_draft_digest_is_the_sha256_of_the_bytes(draft: bytes) -> None:
    digest = draft_digest(draft)
    assert len(digest) == 64 and digest == draft_digest(bytes(draft))
    assert digest != draft_digest(draft + b"\n")


def test_a_letter_with_wrong_fields_lists_every_problem() -> None:
    letter = sample_letter(
        head_nip="1970", residents=0, visit_end=datetime.time(7, 0),
        visit_date=datetime.date(2026, 11, 30), addressee=" ",
    )
    assert {p.field for p in letter.problems()} == {
        "head_nip", "residents", "visit_end", "visit_date", "addressee",
    }
    with pytest.raises(ValidationError) as caught:
        render_reply(letter)
    assert "NIP harus 18 angka" in caught.value.text("id")
    assert "18 digits" in caught.value.text("en")


def test_text_is_escaped_not_interpreted() -> None:
    html = letters._render_html(sample_letter(addressee='<img src="http://x.test/a.png">'))
    assert "<img src=" not in html and "&lt;img" in html


def test_rendering_fetches_nothing_from_the_network(tmp_path: Path) -> None:
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    fetcher = letters._fetcher()
    for url in ("https://example.com/kop.png", "http://127.0.0.1/x.css",
                f"file://{tmp_path}/x.css"):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)
    page = '<html><body><img src="https://example.com/kop.png"></body></html>'
    with pytest.raises(FatalURLFetchingError):
        HTML(string=page, url_fetcher=letters._fetcher()).write_pdf()


def test_indonesian_words_for_numbers_and_dates() -> None:
    assert letters.spelled(12) == "dua belas"
    assert letters.spelled(11) == "sebelas"
    assert letters.spelled(21) == "dua puluh satu"
    assert letters.spelled(100) == "seratus"
    assert letters.spelled(1250) == "seribu dua ratus lima puluh"
    assert letters.long_date(datetime.date(2026, 8, 17)) == "17 Agustus 2026"
    context = letters._context(sample_letter(visit_end=None))
    assert context["visit_day"] == "Kamis, 10 Desember 2026"
    assert context["visit_time"] == "08.00 WIB s.d. selesai"


@pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils is not installed (apt-get install poppler-utils): "
    "the letter cannot be rendered to an image to look at",
)
def test_letter_renders_to_an_image_with_its_parts(draft: bytes, tmp_path: Path) -> None:
    """Page 1 as PNG in artefacts/web/reply-letter.png, to look at; the text checked in
    reading order so a part that fell off the page or onto a second one is caught."""
    pdf = tmp_path / "reply.pdf"
    pdf.write_bytes(draft)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile",
         str(pdf), str(ARTEFACTS / "reply-letter")],
        check=True, timeout=60,
    )
    png = ARTEFACTS / "reply-letter.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
        timeout=60,
    ).stdout
    assert "\f" not in text.rstrip("\f")  # one page
    # side by side on the page (number block | addressee), so only present
    beside = ["Sifat", "Lampiran", "Perihal", "Kepada", "Yth.", "Kepala Desa Kemloko", "TEMPAT"]
    # one under the other, top to bottom
    in_order = [
        "PEMERINTAH KABUPATEN BLITAR", "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL",
        "Blitar, 1 Desember 2026", "Nomor", "470/045/409.112.03/2026",
        "Kamis, 10 Desember 2026", "08.00 WIB s.d. 12.00", "12 (dua belas) orang",
        "mendampingi petugas", "Ditandatangani secara elektronik", HEAD,
        "NIP. 197001011990031001", "Tembusan", "Camat Nglegok", "Balai Besar Sertifikasi",
    ]
    missing = [part for part in beside + in_order if part not in text]
    assert missing == []
    positions = [text.find(part) for part in in_order]
    assert positions == sorted(positions)


# ---------------------------------------------------------------------------------------
# The signed copy


def test_the_signed_draft_is_accepted(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    signed = sign(draft, head)
    assert signed.startswith(draft)
    result = verify_signed(draft, signed, [bsre.cert])
    assert result.ok, [r.en for r in result.reasons]
    assert result.reasons == []
    assert result.signer_name == HEAD
    assert result.field_name == FIELD_NAME
    assert result.certificate_issuer is not None and "Uji BSrE Root CA" in result.certificate_issuer
    serial = head.signing_cert.serial_number
    assert result.certificate_serial == format(serial, "X")
    assert result.signing_time is not None
    assert abs(result.signing_time - datetime.datetime.now(datetime.UTC)) < datetime.timedelta(
        hours=1
    )
    assert result.signed_sha256 == draft_digest(signed)


def test_trust_roots_load_from_a_pem_file(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    roots = letters.load_trust_roots(bsre.cert_file)
    assert verify_signed(draft, sign(draft, head), roots).ok


def test_bytes_changed_inside_the_signed_range_break_the_signature(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    signed = bytearray(sign(draft, head))
    at = signed.index(b"stream", 200) + 40  # inside page 1's content stream
    signed[at] ^= 0x01
    result = verify_signed(draft, bytes(signed), [bsre.cert])
    assert not result.ok
    assert result.codes == ["signature_broken"]
    assert result.reasons[0].text("id").startswith("Tanda tangan elektronik rusak")
    assert result.signer_name == HEAD  # whose signature it was is still shown


def test_a_signature_that_is_not_a_signature_is_unreadable(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    signed = sign(draft, head)
    start = signed.rindex(b"/Contents <") + len(b"/Contents <")
    end = signed.index(b">", start)
    blanked = signed[:start] + b"0" * (end - start) + signed[end:]  # same length, no CMS
    result = verify_signed(draft, blanked, [bsre.cert])
    assert result.codes == ["signature_unreadable"]


def test_a_draft_edited_before_signing_is_refused(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    signed = sign(updated(draft, stamp_page), head)
    result = verify_signed(draft, signed, [bsre.cert])
    assert result.codes == ["draft_changed"]
    assert "sebelum atau saat ditandatangani" in result.reasons[0].id


def test_a_draft_edited_in_the_signing_update_is_refused(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    result = verify_signed(draft, sign(draft, head, edit=stamp_page), [bsre.cert])
    assert result.codes == ["draft_changed"]


def test_a_remade_draft_is_not_this_draft(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    other_day = render_reply(sample_letter(visit_date=datetime.date(2026, 12, 17)))
    result = verify_signed(draft, sign(other_day, head), [bsre.cert])
    assert result.codes == ["not_draft"]
    assert result.reasons[0].en.startswith("The signed document is not this letter's draft")


def test_a_different_pdf_signed_is_not_this_draft(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    from weasyprint import HTML

    other = HTML(string="<p>Surat lain</p>", url_fetcher=letters._fetcher()).write_pdf()
    result = verify_signed(draft, sign(other, head), [bsre.cert])
    assert result.codes == ["not_draft"]


def test_page_content_changed_after_signing_is_refused(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    signed = sign(draft, head)
    result = verify_signed(draft, updated(signed, stamp_page), [bsre.cert])
    assert result.codes == ["changed_after_signing"]
    assert result.reasons[0].id == "Dokumen diubah setelah ditandatangani"


def test_validation_data_added_after_signing_is_accepted(
    draft: bytes, head: signers.SimpleSigner, bsre: Authority
) -> None:
    """BSrE's service or a later archive step may add a DSS (certificates, OCSP, CRL) for
    long-term validation: signature maintenance, not a change to the letter."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    buffer = io.BytesIO(sign(draft, head))
    signature = PdfFileReader(buffer).embedded_signatures[0]
    root = asn1_x509.Certificate.load(bsre.cert.public_bytes(serialization.Encoding.DER))
    DocumentSecurityStore.add_dss(buffer, signature.pkcs7_content, certs=[root])
    extended = buffer.getvalue()
    assert PdfFileReader(io.BytesIO(extended)).xrefs.total_revisions == 4
    result = verify_signed(draft, extended, [bsre.cert])
    assert result.ok, result.codes


def test_a_signer_from_another_authority_is_untrusted(
    draft: bytes, bsre: Authority, folder: Path
) -> None:
    stranger = make_authority(folder / "other-ca", "Bukan BSrE CA").issue(
        folder / "stranger", HEAD
    )
    result = verify_signed(draft, sign(draft, stranger), [bsre.cert])
    assert result.codes == ["untrusted_signer"]
    assert result.signer_name == HEAD and "Bukan BSrE CA" in (result.certificate_issuer or "")


def test_an_expired_certificate_is_refused(
    draft: bytes, bsre: Authority, folder: Path
) -> None:
    expired = bsre.issue(
        folder / "expired", HEAD,
        not_before=NOW - datetime.timedelta(days=20), not_after=NOW - datetime.timedelta(days=1),
    )
    result = verify_signed(draft, sign(draft, expired), [bsre.cert])
    assert result.codes == ["certificate_expired"]
    assert result.reasons[0].id == "Sertifikat penanda tangan sudah kedaluwarsa"


@pytest.mark.parametrize(
    "junk",
    [b"", b"bukan pdf sama sekali", b"%PDF-1.7\n\x00\xff garbage", bytes(range(256)) * 8],
    ids=["empty", "text", "pdf-header-garbage", "binary"],
)
def test_garbage_is_not_a_pdf(draft: bytes, bsre: Authority, junk: bytes) -> None:
    result = verify_signed(draft, junk, [bsre.cert])
    assert not result.ok and result.codes == ["not_pdf"]
    assert result.reasons[0].text("en") == "The file is not a readable PDF"


def test_the_unsigned_draft_has_no_signature(draft: bytes, bsre: Authority) -> None:
    result = verify_signed(draft, draft, [bsre.cert])
    assert result.codes == ["no_signature"]
