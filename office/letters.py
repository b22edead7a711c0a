"""The reply letter of SOP step 4: its draft PDF, and the check of the copy the head signed.

Step 4 of the SOP has the Kepala Dinas sign (TTE) a reply to the village: when the
recording will be, and the request that village staff accompany the officers. The
signature is made in BSrE's own service, outside this system, so the office cannot
trust whatever PDF comes back. It keeps the exact draft bytes it handed out and accepts a
signed file only when:

* it is a PDF with a signature that is intact (no signed byte changed) and valid;
* the signed revision is our draft plus the signing update and nothing else: the file
  begins with the draft byte for byte, the signature is made in the first update after
  it, and that update only fills in the signature (pyHanko's difference analysis), so
  nobody can sign an edited letter;
* nothing but signature maintenance (validation data, timestamps) was added after
  signing;
* the signer's certificate chains to a trusted root (BSrE's root in production, read
  with :func:`load_trust_roots`; the tests make their own CA) and is in force now.

Each refusal carries its own reason in Bahasa Indonesia and English (:class:`Reason`), so
the page can say what is wrong with the file instead of "invalid".

The draft is rendered with WeasyPrint from ``letter_templates/reply.html`` (Django's
template engine, autoescaped) and never touches the network: the URL fetcher allows only
the template folder and the DejaVu font folder. An empty signature field named
:data:`FIELD_NAME` is placed over the marked box "Ditandatangani secara elektronik", so a
signing tool can fill it where the letter expects the stamp.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sync.errors import ConfigError, ValidationError

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).with_name("letter_templates")
TEMPLATE = "reply.html"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core
FONT_FILES = ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
FIELD_NAME = "TTE_Kepala_Dinas"
SIGNATURE_BOX_ID = "tte"
PX_TO_PT = 0.75  # WeasyPrint lays out in CSS px (1/96 in); PDF user space is pt (1/72 in)

MONTHS = (
    "Januari", "Februari", "Maret", "April", "Mei", "Juni",
    "Juli", "Agustus", "September", "Oktober", "November", "Desember",
)
DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_ONES = (
    "", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan",
    "sepuluh", "sebelas",
)


# ---------------------------------------------------------------------------------------
# The letter


@dataclass(frozen=True)
class Letterhead:
    """The kop surat. Defaults are a plausible but fictional address and contact: the
    office puts its own in (the real ones are not this project's to invent)."""

    government: str = "PEMERINTAH KABUPATEN BLITAR"
    organisation: str = "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL"
    address: str = "Jalan Kusuma Bangsa No. 12, Kanigoro, Blitar, Jawa Timur 66171"
    contact: str = "Telepon (0342) 000000 · Surel disdukcapil@blitarkab.example"
    city: str = "Blitar"


@dataclass(frozen=True)
class Problem:
    """One field of a :class:`ReplyLetter` that cannot go into a letter, and why."""

    field: str
    id: str
    en: str

    def text(self, lang: str = "id") -> str:
        return self.en if lang == "en" else self.id


@dataclass(frozen=True)
class ReplyLetter:
    """What the reply letter says (SOP step 4: the time of recording and the request that
    village staff accompany the officers). Plain text fields: the web form fills them from
    the request and the schedule, and the staff can correct them before the draft is made.

    ``addressee`` is who the letter goes to ("Kepala Desa Kemloko", "Direktur RSUD
    Ngudi Waluyo"); ``accompaniment`` who is asked to accompany ("perangkat desa", "petugas
    rumah sakit"); ``visit_end`` None means "sampai dengan selesai".
    """

    number: str
    date: datetime.date
    addressee: str
    request_number: str
    request_date: datetime.date
    visit_date: datetime.date
    visit_start: datetime.time
    visit_end: datetime.time | None
    recording_point: str
    residents: int
    officers: int
    head_name: str
    head_title: str  # pangkat/golongan, e.g. "Pembina Utama Muda (IV/c)"
    head_nip: str
    accompaniment: str = "perangkat desa/kelurahan setempat"
    addressee_place: str = "Tempat"
    nature: str = "Biasa"  # sifat
    attachment: str = "-"  # lampiran
    subject: str = (
        "Pemberitahuan Pelaksanaan Perekaman KTP-el Penduduk Rentan Administrasi Kependudukan"
    )
    head_position: str = (
        "Kepala Dinas Kependudukan dan Pencatatan Sipil Kabupaten Blitar"
    )
    copies: tuple[str, ...] = ("Bupati Blitar (sebagai laporan)",)  # tembusan
    time_zone: str = "WIB"
    letterhead: Letterhead = field(default_factory=Letterhead)

    def problems(self) -> list[Problem]:
        """Every field that cannot go into the letter, so a form can mark them all at once."""
        found: list[Problem] = []
        required = {
            "number": ("Nomor surat", "Letter number"),
            "addressee": ("Tujuan surat (Yth.)", "Addressee"),
            "request_number": ("Nomor surat permohonan", "Request letter number"),
            "recording_point": ("Tempat perekaman", "Recording point"),
            "head_name": ("Nama Kepala Dinas", "Head's name"),
            "head_title": ("Pangkat/golongan Kepala Dinas", "Head's rank"),
            "accompaniment": ("Pendamping yang diminta", "Requested companions"),
        }
        for name, (label_id, label_en) in required.items():
            if not str(getattr(self, name)).strip():
                found.append(Problem(name, f"{label_id} wajib diisi", f"{label_en} is required"))
        if not (self.head_nip.isdigit() and len(self.head_nip) == 18):
            found.append(Problem(
                "head_nip", "NIP harus 18 angka", "The NIP (civil servant number) must be 18 digits"
            ))
        if self.residents < 1:
            found.append(Problem(
                "residents", "Jumlah sasaran minimal 1 orang", "At least one resident is needed"
            ))
        if self.officers < 1:
            found.append(Problem(
                "officers", "Jumlah petugas minimal 1 orang", "At least one officer is needed"
            ))
        if self.visit_end is not None and self.visit_end <= self.visit_start:
            found.append(Problem(
                "visit_end", "Jam selesai harus setelah jam mulai",
                "The end time must be after the start time",
            ))
        if self.request_date > self.date:
            found.append(Problem(
                "request_date",
                "Tanggal surat permohonan tidak boleh setelah tanggal surat balasan",
                "The request letter cannot be dated after the reply",
            ))
        if self.visit_date < self.date:
            found.append(Problem(
                "visit_date", "Tanggal perekaman tidak boleh sebelum tanggal surat balasan",
                "The visit cannot be before the reply letter's date",
            ))
        return found


def long_date(day: datetime.date) -> str:
    """'1 Desember 2026': the date as an Indonesian letter writes it."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def spelled(n: int) -> str:
    """An Indonesian number in words (terbilang), 0..9999: letters write counts as
    '12 (dua belas)' so a figure cannot be altered unnoticed."""
    if not 0 <= n <= 9999:
        raise ValueError(n)
    if n == 0:
        return "nol"
    if n < 12:
        return _ONES[n]
    if n < 20:
        return f"{_ONES[n - 10]} belas"
    if n < 100:
        tens, rest = divmod(n, 10)
        return f"{_ONES[tens]} puluh" + (f" {_ONES[rest]}" if rest else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "seratus" if hundreds == 1 else f"{_ONES[hundreds]} ratus"
        return head + (f" {spelled(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = "seribu" if thousands == 1 else f"{_ONES[thousands]} ribu"
    return head + (f" {spelled(rest)}" if rest else "")


def _clock(t: datetime.time) -> str:
    return f"{t.hour:02d}.{t.minute:02d}"  # Indonesian writes 08.30, not 08:30


def _context(letter: ReplyLetter) -> dict[str, Any]:
    """What the template shows, already in the words an Indonesian letter uses."""
    end = _clock(letter.visit_end) if letter.visit_end else "selesai"
    return {
        "letter": letter,
        "head": letter.letterhead,
        "letter_date": long_date(letter.date),
        "request_date": long_date(letter.request_date),
        "visit_day": f"{DAYS[letter.visit_date.weekday()]}, {long_date(letter.visit_date)}",
        "visit_time": f"{_clock(letter.visit_start)} {letter.time_zone} s.d. {end}",
        "residents": f"{letter.residents} ({spelled(letter.residents)}) orang",
        "officers": f"{letter.officers} ({spelled(letter.officers)}) orang petugas perekaman",
    }


# ---------------------------------------------------------------------------------------
# The draft


def _fetcher() -> Any:
    """A WeasyPrint URL fetcher that reads only the template folder and the fonts.

    A letter must look the same offline as online and must not leak that it is being
    made; anything else (http, https, data from elsewhere on disk) stops the rendering,
    so a missing resource fails loudly instead of printing a letter without its font.
    """
    from weasyprint.urls import URLFetcher

    allowed = (TEMPLATE_DIR.resolve(), FONT_DIR.resolve())

    class LocalOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.startswith("file:"):
                raise ValueError(f"letters: refused to fetch {url!r} (no network)")
            from urllib.request import url2pathname

            path = Path(url2pathname(url.split("?")[0].removeprefix("file:"))).resolve()
            if not any(path.is_relative_to(root) for root in allowed):
                raise ValueError(f"letters: refused to read {path} (outside the template)")
            return super().fetch(url, headers)

    return LocalOnly(fail_on_errors=True, allowed_protocols=("file",))


def _check_fonts() -> None:
    missing = [name for name in FONT_FILES if not (FONT_DIR / name).is_file()]
    if missing:
        raise ConfigError(
            id=f"Huruf surat tidak ada: {', '.join(missing)} di {FONT_DIR}",
            en=f"Letter fonts missing: {', '.join(missing)} in {FONT_DIR}",
            hint_id="Pasang paket Debian fonts-dejavu-core",
            hint_en="Install the Debian package fonts-dejavu-core",
        )


def _render_html(letter: ReplyLetter) -> str:
    from django.template import Context, Engine

    engine = Engine(dirs=[str(TEMPLATE_DIR)], autoescape=True)
    return engine.get_template(TEMPLATE).render(
        Context(_context(letter), use_l10n=False, use_tz=False)  # no settings needed
    )


def _signature_rect(document: Any) -> tuple[int, tuple[int, int, int, int]]:
    """The page index and PDF rectangle (pt, origin bottom left) of the marked TTE box."""
    for index, page in enumerate(document.pages):
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            if element is not None and element.get("id") == SIGNATURE_BOX_ID:
                height = page.height * PX_TO_PT
                x, y = box.border_box_x() * PX_TO_PT, box.border_box_y() * PX_TO_PT
                w, h = box.border_width() * PX_TO_PT, box.border_height() * PX_TO_PT
                rect = (round(x), round(height - y - h), round(x + w), round(height - y))
                return index, rect
    raise RuntimeError("reply.html has no signature box (id='tte')")  # a template bug


def render_reply(letter: ReplyLetter) -> bytes:
    """The draft reply letter: A4 PDF, with an empty signature field over the TTE box.

    Raises :class:`ValidationError` (all problems in one message) when the letter is not
    fit to print, :class:`ConfigError` when the fonts are missing. Keep the bytes returned:
    :func:`verify_signed` compares the signed file against exactly these.
    """
    problems = letter.problems()
    if problems:
        raise ValidationError(
            id="Surat belum lengkap: " + "; ".join(p.id for p in problems),
            en="The letter is incomplete: " + "; ".join(p.en for p in problems),
            code="letter_invalid",
        )
    _check_fonts()
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field, ensure_sig_flags
    from weasyprint import HTML

    html = HTML(
        string=_render_html(letter),
        base_url=TEMPLATE_DIR.as_uri() + "/",
        url_fetcher=_fetcher(),
    )
    document = html.render()
    if len(document.pages) != 1:
        # A reply letter is one page; a second means the text overflowed (a very long
        # addressee or copies list) and BSrE's stamp would land away from the text.
        log.warning("reply letter laid out on %d pages", len(document.pages))
    page, rect = _signature_rect(document)
    pdf = document.write_pdf()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    append_signature_field(writer, SigFieldSpec(FIELD_NAME, on_page=page, box=rect))
    # Append-only (SigFlags 3) from the start: tools then save the signature as an
    # incremental update, and signing does not have to change the form dictionary, which
    # the check of the signing update would count as a change to the draft.
    ensure_sig_flags(writer, lock_sig_flags=True)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def draft_digest(draft: bytes) -> str:
    """The draft's SHA-256 (hex): what the office records to show which draft was sent."""
    return hashlib.sha256(draft).hexdigest()


# ---------------------------------------------------------------------------------------
# The signed copy


@dataclass(frozen=True)
class Reason:
    """Why a signed file is refused: a stable ``code`` and the message in both languages."""

    code: str
    id: str
    en: str

    def text(self, lang: str = "id") -> str:
        return self.en if lang == "en" else self.id


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify_signed`: ``ok`` only with no reason to refuse.

    The signer's details are filled in whenever the signature could be read, also on a
    refusal, so the page can show whose signature was rejected.
    """

    ok: bool
    reasons: list[Reason]
    signer_name: str | None = None
    signing_time: datetime.datetime | None = None
    certificate_serial: str | None = None
    certificate_issuer: str | None = None
    field_name: str | None = None
    signed_sha256: str = ""

    @property
    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]


NOT_PDF = Reason(
    "not_pdf", "Berkas bukan PDF atau tidak dapat dibaca", "The file is not a readable PDF"
)
NO_SIGNATURE = Reason(
    "no_signature",
    "PDF tidak memuat tanda tangan elektronik",
    "The PDF carries no electronic signature",
)
BROKEN = Reason(
    "signature_broken",
    "Tanda tangan elektronik rusak: isi berkas berubah setelah ditandatangani",
    "The electronic signature is broken: the file's bytes changed after signing",
)
UNREADABLE = Reason(
    "signature_unreadable",
    "Tanda tangan elektronik tidak dapat dibaca",
    "The electronic signature cannot be read",
)
NOT_DRAFT = Reason(
    "not_draft",
    "Dokumen yang ditandatangani bukan draf surat ini (berkas lain, atau draf dibuat ulang "
    "atau disimpan ulang sebelum ditandatangani)",
    "The signed document is not this letter's draft (another file, or the draft was "
    "re-made or re-saved before signing)",
)
DRAFT_CHANGED = Reason(
    "draft_changed",
    "Draf diubah sebelum atau saat ditandatangani",
    "The draft was changed before or while it was signed",
)
PARTIAL = Reason(
    "partial_coverage",
    "Tanda tangan tidak mencakup seluruh dokumen",
    "The signature does not cover the whole document",
)
CHANGED_AFTER = Reason(
    "changed_after_signing",
    "Dokumen diubah setelah ditandatangani",
    "The document was changed after it was signed",
)
UNTRUSTED = Reason(
    "untrusted_signer",
    "Sertifikat penanda tangan tidak diterbitkan oleh otoritas yang dipercaya (BSrE)",
    "The signer's certificate was not issued by a trusted authority (BSrE)",
)
EXPIRED = Reason(
    "certificate_expired",
    "Sertifikat penanda tangan sudah kedaluwarsa",
    "The signer's certificate has expired",
)
NOT_YET_VALID = Reason(
    "certificate_not_yet_valid",
    "Sertifikat penanda tangan belum berlaku",
    "The signer's certificate is not valid yet",
)
REVOKED = Reason(
    "certificate_revoked",
    "Sertifikat penanda tangan sudah dicabut",
    "The signer's certificate has been revoked",
)
KEY_USAGE = Reason(
    "certificate_not_for_signing",
    "Sertifikat penanda tangan tidak untuk tanda tangan dokumen",
    "The signer's certificate is not meant for signing documents",
)
TIMESTAMP = Reason(
    "timestamp_untrusted",
    "Cap waktu (timestamp) pada tanda tangan tidak sah atau tidak dipercaya",
    "The signature's timestamp is invalid or not trusted",
)


def load_trust_roots(path: Path) -> list[x509.Certificate]:
    """The root certificates in a PEM file (BSrE's root in production; the setting that
    names the file is the web app's). ConfigError when the file has none."""
    try:
        roots = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            id=f"Sertifikat akar TTE {path} tidak dapat dibaca",
            en=f"TTE root certificate file {path} cannot be read ({exc})",
            hint_id="Simpan sertifikat akar BSrE (PEM) di berkas itu",
            hint_en="Put BSrE's root certificate (PEM) in that file",
        ) from exc
    return roots


def _asn1(cert: x509.Certificate | asn1_x509.Certificate) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _trust_reason(status: Any) -> Reason:
    from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate

    indic = status.trust_problem_indic
    if indic in (AdESIndeterminate.EXPIRED, AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
                 AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED):
        return EXPIRED
    if indic in (AdESFailure.NOT_YET_VALID, AdESIndeterminate.NOT_YET_VALID):
        return NOT_YET_VALID
    if indic in (AdESFailure.REVOKED, AdESIndeterminate.REVOKED_NO_POE,
                 AdESIndeterminate.REVOKED_CA_NO_POE):
        return REVOKED
    if indic == AdESIndeterminate.SIG_CONSTRAINTS_FAILURE:
        return KEY_USAGE
    return UNTRUSTED


def _refuse(reason: Reason, signed: bytes, **signer: Any) -> Verification:
    log.info("signed letter refused: %s", reason.code)
    return Verification(
        ok=False, reasons=[reason], signed_sha256=hashlib.sha256(signed).hexdigest(), **signer
    )


def verify_signed(
    draft: bytes,
    signed: bytes,
    trust_roots: Sequence[x509.Certificate | asn1_x509.Certificate],
    *,
    other_certs: Iterable[x509.Certificate | asn1_x509.Certificate] = (),
    allow_fetching: bool = False,
) -> Verification:
    """Whether ``signed`` is ``draft`` signed by a holder of a certificate under
    ``trust_roots``, and if not, every reason why.

    ``other_certs`` are intermediate CA certificates in case the signature does not carry
    them. ``allow_fetching`` lets pyHanko fetch revocation data (OCSP, CRL) over the
    network; off by default, and then revocation is not checked (soft-fail).
    """
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel
    from pyhanko.sign.diff_analysis.policy_api import SuspiciousModification
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    if not signed.startswith(b"%PDF-"):
        return _refuse(NOT_PDF, signed)
    # A hostile or broken upload can fail anywhere in the parser, hence the broad catches:
    # whatever fails, the file is refused with the step that failed, never a traceback.
    try:
        reader = PdfFileReader(io.BytesIO(signed))
        reader.root  # noqa: B018 - parses the trailer and catalogue now
    except Exception as exc:
        log.info("signed letter unreadable: %s", type(exc).__name__)
        return _refuse(NOT_PDF, signed)
    try:
        signatures = list(reader.embedded_signatures)
    except Exception as exc:
        log.info("signature dictionary unreadable: %s", type(exc).__name__)
        return _refuse(UNREADABLE, signed)
    if not signatures:
        return _refuse(NO_SIGNATURE, signed)
    sig = next((s for s in signatures if s.field_name == FIELD_NAME), signatures[0])
    try:
        cert = sig.signer_cert
        signer = {
            "signer_name": cert.subject.native.get("common_name"),
            "certificate_serial": format(cert.serial_number, "X"),
            "certificate_issuer": cert.issuer.human_friendly,
            "field_name": sig.field_name,
        }
    except Exception as exc:
        log.info("signer certificate unreadable: %s", type(exc).__name__)
        return _refuse(UNREADABLE, signed)
    context = ValidationContext(
        trust_roots=[_asn1(c) for c in trust_roots],
        other_certs=[_asn1(c) for c in other_certs],
        allow_fetching=allow_fetching,
        revocation_mode="soft-fail",
    )
    try:
        status = validate_pdf_signature(
            sig,
            signer_validation_context=context,
            diff_policy=DEFAULT_DIFF_POLICY,
            key_usage_settings=KeyUsageConstraints(
                key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
            ),
        )
    except (SignatureValidationError, PdfError, ValueError, KeyError) as exc:
        log.info("signature unreadable: %s", type(exc).__name__)
        return _refuse(UNREADABLE, signed, **signer)

    timestamp = status.timestamp_validity
    signer["signing_time"] = timestamp.timestamp if timestamp else status.signer_reported_dt
    if not (status.intact and status.valid):
        # The signed bytes no longer match the signature: any further check would be
        # reasoning about bytes nobody signed.
        return _refuse(BROKEN, signed, **signer)

    reasons: list[Reason] = []
    if status.coverage not in (
        SignatureCoverageLevel.ENTIRE_REVISION, SignatureCoverageLevel.ENTIRE_FILE
    ):
        reasons.append(PARTIAL)

    # The signed revision must be our draft plus the signing update only.
    draft_revisions = PdfFileReader(io.BytesIO(draft)).xrefs.total_revisions
    if signed[: len(draft)] != draft:
        reasons.append(NOT_DRAFT)
    elif sig.signed_revision != draft_revisions:
        reasons.append(DRAFT_CHANGED)  # an update between the draft and the signature
    else:
        try:
            result = DEFAULT_DIFF_POLICY.apply(
                old=reader.get_historical_resolver(draft_revisions - 1),
                new=reader.get_historical_resolver(sig.signed_revision),
            )
            # Signing fills one signature field; anything more (other fields, page
            # content, annotations) is an edit of the letter made while signing.
            if result.modification_level > ModificationLevel.FORM_FILLING or (
                result.changed_form_fields - {sig.field_name}
            ):
                reasons.append(DRAFT_CHANGED)
        except SuspiciousModification as exc:
            log.info("signing revision changes the draft: %s", exc)
            reasons.append(DRAFT_CHANGED)

    level = status.modification_level
    if level is not None and level > ModificationLevel.LTA_UPDATES:
        reasons.append(CHANGED_AFTER)
    if not status.trusted:
        reasons.append(_trust_reason(status))
    if timestamp is not None and not (timestamp.valid and timestamp.intact and timestamp.trusted):
        reasons.append(TIMESTAMP)
    for reason in reasons:
        log.info("signed letter refused: %s", reason.code)
    return Verification(
        ok=not reasons,
        reasons=reasons,
        signed_sha256=hashlib.sha256(signed).hexdigest(),
        **signer,
    )
