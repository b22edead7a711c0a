"""The demo's office work of the SOP, done through the office web app's pages as staff do
it (issue 13): a village's request letter registered with its scan, the head's
disposition, the village's target list imported (with the rows a real list has wrong),
the targets verified, a visit scheduled on the kit, the reply letter drafted, signed by
the head in BSrE's service (:mod:`demo.bsre` stands in for it) and verified, the kit
handed out with its self-test, the assignment sent over the sealed channel; and after the
visit, the kit's return and the records closing the targets.

Every step is a form post to the running web app (:class:`demo.OfficeWeb`); the demo
reads the office database only to narrate what the pages did.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

LETTER_NUMBER = "474/27/409.31.4/2026"
"""The request letter's number (an invented one, in the form villages use)."""

OFFICERS = (("P-0001", "Rina Wulandari"), ("P-0002", "Agus Priyanto"),
            ("P-0003", "Dwi Lestari"))
"""The recording officers the office knows (invented); P-0001 is the kit's officer."""

HEAD_NAME = "Drs. BAMBANG SUTRISNO, M.Si."
"""The Kepala Dinas who signs the reply letter (invented)."""


def village_list_csv() -> bytes:
    """Desa Papungan's list as a village office's Excel saves it: ``;``-separated,
    Windows-1252, dates dd-mm-yyyy, names in capitals, a phone column the office does not
    need, the category under a heading the import does not know (the mapping step), and
    five rows with a fault each (the import refuses them, each with its reason)."""
    header = ["NO", "NIK", "NO KK", "NAMA LENGKAP", "TGL LAHIR", "L/P", "RT", "RW", "DUSUN",
              "DESA", "KEC", "KONDISI SASARAN", "TEMPAT", "KETERANGAN", "NO HP"]
    sumirah = ["1", "3505104411390007", "3505102107110031", "SUMIRAH DARMOWIYONO",
               "04-11-1939", "P", "2", "1", "Krajan", "Papungan", "Kanigoro", "lansia",
               "rumah", "Tidak bisa berjalan, kunjungi pagi ±09.00", "0812000001"]
    rows = [
        sumirah,
        ["2", "3505102902440012", "3505100503120018", "KASMIRAN HADIWIJOYO", "29-02-1944",
         "L", "4", "2", "Krajan", "Papungan", "Kanigoro", "sakit", "rumah",
         "Pasca stroke, tangan kanan lemah", ""],
        ["3", "3505104506780021", "3505101402090007", "WAHYUNINGSIH", "05-06-1978", "P",
         "1", "3", "Papungan", "Papungan", "Kanigoro", "ODGJ", "rumah",
         "Didampingi keluarga", ""],
        ["4", "3505100910650009", "3505100102110044", "MUJIONO", "09-10-1965", "L", "6",
         "3", "Papungan", "Papungan", "Kanigoro", "lainnya", "rumah", "", ""],
        sumirah,  # typed twice: the copy is refused, the first kept
        # the NIK says 12-05-1948, the list 21-05-1948
        ["5", "3505105205480015", "3505101203100021", "SUPARMI", "21-05-1948", "P", "3",
         "1", "Krajan", "Papungan", "Kanigoro", "lansia", "rumah", "", ""],
        # a family card number one digit short
        ["6", "3505101708520003", "350510110310002", "KATIMAN", "17-08-1952", "L", "2",
         "2", "Krajan", "Papungan", "Kanigoro", "lansia", "rumah", "", ""],
        # a kecamatan of Kota Blitar, not of the kabupaten
        ["7", "3505106303570008", "3505100407120013", "SITI ROMLAH", "23-03-1957", "P", "5",
         "1", "Papungan", "Papungan", "Sukorejo", "disabilitas", "rumah", "", ""],
        # a woman's NIK (day + 40) with "L"
        ["8", "3505105501490011", "3505102511080016", "PAINEM", "15-01-1949", "L", "1",
         "1", "Krajan", "Papungan", "Kanigoro", "lansia", "rumah", "", ""],
    ]
    text = "\r\n".join(";".join(r) for r in [header, *rows]) + "\r\n"
    return text.encode("cp1252")


def request_letter_pdf(today: dt.date) -> bytes:
    """The village's request letter as the office scans it (a one-page PDF; invented)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 13)
    pdf.cell(0, 8, "PEMERINTAH DESA PAPUNGAN", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    pdf.cell(0, 6, "Kecamatan Kanigoro, Kabupaten Blitar", align="C", new_x="LMARGIN",
             new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(0, 6, f"Nomor: {LETTER_NUMBER}\nPerihal: Permohonan perekaman KTP-el bagi "
                         f"penduduk rentan\n\nYth. Kepala Dinas Kependudukan dan Pencatatan "
                         f"Sipil Kabupaten Blitar\n\nDengan hormat, bersama ini kami mohon "
                         f"pelayanan perekaman KTP-el di rumah bagi warga lansia, sakit dan "
                         f"ODGJ (daftar terlampir).\n\nPapungan, {today:%d-%m-%Y}\n"
                         f"Kepala Desa Papungan")
    return bytes(pdf.output())


class DemoOfficeFlow:
    """The office's part of the SOP through the pages; :meth:`narrate` prints each step."""

    def __init__(self, web: Any, alias: str, kit_id: str, say: Callable[[str], None],
                 step: Callable[[str], None], root: Path) -> None:
        self.web, self.alias, self.kit_id = web, alias, kit_id
        self.say, self.step, self.root = say, step, root
        self.request_id = 0
        self.visit_id = 0

    # -- helpers ------------------------------------------------------------------------
    def _request(self) -> Any:
        from office.models import VisitRequest

        return VisitRequest.objects.using(self.alias).get(pk=self.request_id)

    def _history(self) -> str:
        from django.utils import translation

        from office import visits
        from office.models import RequestEvent

        last = RequestEvent.objects.using(self.alias).filter(
            request_id=self.request_id).last()
        if last is None:
            return "no history"
        with translation.override("en"):
            label = visits.state_label(last.status)
        return f"status '{label}' (by {last.by}" + (
            f": {last.note})" if last.note else ")")

    @staticmethod
    def _errors(page: str) -> list[str]:
        """The form errors a page shows (Django's errorlist), as plain text."""
        found = re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', page, re.S)
        found += re.findall(r'<(?:div|p|li)[^>]*class="[^"]*\b(?:errors|field-error|notice)\b'
                            r'[^"]*"[^>]*>(.*?)</(?:div|p|li)>', page, re.S)
        return [" ".join(re.sub(r"<[^>]+>", " ", f).split()) for f in found]

    # -- SOP steps 1-3 --------------------------------------------------------------------
    def register_and_import(self, today: dt.date) -> None:
        from office.models import Target, VisitRequest

        web = self.web
        self.step("Office (front desk): Desa Papungan's request letter is registered with "
                  "its scan; Kepala Dinas dispositions it to Bidang Dafduk")
        page = web.post("/requests/new/", {
            "letter_number": LETTER_NUMBER,
            "letter_date": (today - dt.timedelta(days=4)).isoformat(),
            "received_on": (today - dt.timedelta(days=1)).isoformat(),
            "applicant_kind": "village", "kecamatan": "Kanigoro", "village": "Papungan",
            "summary": "Mohon perekaman KTP-el di rumah bagi warga rentan (daftar terlampir)",
        }, files={"scan": ("surat-permohonan-papungan.pdf", request_letter_pdf(today),
                           "application/pdf")})
        match = re.search(r"/requests/(\d+)/", web.last_url)
        if match is None:
            raise RuntimeError("the request was not registered: " +
                               "; ".join(self._errors(page)))
        self.request_id = int(match.group(1))
        web.post(f"/requests/{self.request_id}/disposition/",
                 {"decision": "forward", "note": "Segera jadwalkan, mohon didahulukan"})
        self.say(f"request {LETTER_NUMBER} (#{self.request_id}): {self._history()}")

        self.step("Office (Bidang Dafduk): the village's target list is imported: CSV, "
                  "Windows-1252, ';', a column to map, and five faulty rows")
        data = village_list_csv()
        page = web.post(f"/requests/{self.request_id}/import/", {"action": "upload"},
                        files={"file": ("sasaran-papungan.csv", data, "text/csv")})
        from office import target_import as ti

        table = ti.read_table(data, "sasaran-papungan.csv")
        suggestion = ti.suggest_mapping(table.headers)
        self.say(f"the file: {table.description('en')}")
        for line in suggestion.messages("en"):
            self.say(f"mapping step: {line}")
        columns = dict(suggestion.columns)
        columns["category"] = table.headers.index("KONDISI SASARAN")
        self.say("the user maps 'KONDISI SASARAN' to Category")
        page = web.post(f"/requests/{self.request_id}/import/", {
            "action": "map", **{f"col-{k}": str(v) for k, v in columns.items()}})
        accepted = re.findall(r'name="row" value="(\d+)"', page)
        report = ti.check_rows(table, ti.ColumnMapping(table.headers, columns, {}),
                               known_niks={})
        self.say(f"report on the page: {report.summary('en')}")
        for row in report.refused:
            self.say(f"  {row.text('en')}")
        web.post(f"/requests/{self.request_id}/import/",
                 {"action": "confirm", "row": accepted})
        rows = Target.objects.using(self.alias).filter(request_id=self.request_id)
        self.say(f"confirmed: {rows.count()} targets imported (rows "
                 f"{', '.join(accepted)}), sealed under the office's key; {self._history()}")

        self.step("Office (Bidang Dafduk): each target verified (SOP step 3)")
        ids = [str(r.pk) for r in rows.order_by("source_row")]
        web.post(f"/requests/{self.request_id}/verify/", {"bulk": "1", "picked": ids})
        vr = VisitRequest.objects.using(self.alias).get(pk=self.request_id)
        self.say(f"{len(ids)} verified; {self._history()} (request now '{vr.status}')")

    # -- SOP step 3: the schedule ---------------------------------------------------------
    def officers_and_kit(self, wait: Callable[..., Any]) -> None:
        """The office's officers, and the kit's self-test (a kit with none is not offered)."""
        from office.models import Command

        for officer_id, name in OFFICERS:
            self.web.post("/schedule/officers/", {"officer_id": officer_id, "name": name})
        self.web.post(f"/kits/{self.kit_id}/commands/selftest", {})
        command = Command.objects.using(self.alias).filter(
            kit_id=self.kit_id, name="selftest").order_by("-queued_at").first()
        if command is not None:
            wait(lambda: Command.objects.using(self.alias).filter(
                command_id=command.command_id, result_at__isnull=False).first(), 30,
                "the kit's self-test answer")
        self.say(f"officers {', '.join(f'{n} ({i})' for i, n in OFFICERS)}; kit "
                 f"{self.kit_id} self-tested from its page (a kit without a passing "
                 f"self-test is not offered for a visit)")

    def schedule(self, day: dt.date) -> None:
        from office.models import Target, Visit

        self.step("Office (Bidang Dafduk): the visit is scheduled from the page's suggestions")
        path = f"/requests/{self.request_id}/visits/new/"
        page = self.web.get(path)
        values = form_values(page, "")
        suggested = values.get("visit_date", "?")
        values.update({"visit_date": day.isoformat(), "officers": [o for o, _ in OFFICERS],
                       "kit_id": self.kit_id, "save_anyway": "on",
                       "village_staff": "Sulastri (perangkat desa)\nSunarti (kader lansia)"})
        estimate = re.search(r"(\d+ jam \d+ menit|\d+ menit)", page)
        team = values.get("team_size", "?")
        page = self.web.post(path, values)
        match = re.search(r"/visits/(\d+)/", self.web.last_url)
        if match is None:
            raise RuntimeError("the visit was not saved: " + "; ".join(self._errors(page)))
        self.visit_id = int(match.group(1))
        visit = Visit.objects.using(self.alias).get(pk=self.visit_id)
        on_it = Target.objects.using(self.alias).filter(visit=visit).count()
        self.say(f"the page suggested {suggested} (a weekly cadence) and "
                 f"{estimate.group(1) if estimate else '?'} of work for {on_it} residents "
                 f"(30 min per cooperative resident, more for ODGJ and the sick, plus "
                 f"travel) with a team of {team}")
        self.say(f"the demo takes today, {day:%d-%m-%Y}: visit #{visit.pk}, "
                 f"{visit.recording_point}, officers {visit.officers}, kit {visit.kit_id}; "
                 f"{self._history()}")

    # -- SOP step 4: the reply letter -----------------------------------------------------
    def reply_letter(self, authority: Any) -> None:
        from demo.bsre import sign_as_bsre
        from office.models import ReplyLetter

        self.step("Office: the reply letter is drafted, signed by the head with TTE (BSrE; "
                  "a stand-in here) and checked before it goes")
        path = f"/visits/{self.visit_id}/letter/"
        values = form_values(self.web.get(path), path)
        values.update({"number": "474/512/409.31.4/2026", "head_name": HEAD_NAME,
                       "head_title": "Pembina Utama Muda (IV/c)",
                       "head_nip": "197005121995031002"})
        page = self.web.post(path, values)
        letter = ReplyLetter.objects.using(self.alias).filter(visit_id=self.visit_id).first()
        if letter is None:
            raise RuntimeError("the draft was not made: " + "; ".join(self._errors(page)))
        draft = self.web.get_bytes(f"{path}draft.pdf")
        self.say(f"draft {letter.number}: a {len(draft) // 1024} KiB PDF, SHA-256 "
                 f"{letter.draft_sha256[:16]}…, with an empty signature field over its TTE box")
        key_file, cert_file = authority.issue_signer(self.root, HEAD_NAME)
        tampered = draft.replace(b"/Title", b"/Titel", 1) if b"/Title" in draft else draft + b"\n"
        for name, pdf in (("a signed copy of an edited draft", sign_as_bsre(
                tampered, authority, key_file, cert_file)),
                          ("the signed draft", sign_as_bsre(draft, authority, key_file,
                                                            cert_file))):
            self.web.post(f"{path}signed/", {}, files={
                "signed": ("surat-balasan-tte.pdf", pdf, "application/pdf")})
            letter.refresh_from_db()
            verdict = letter.verification or {}
            reasons = "; ".join(r.get("en", "") for r in verdict.get("reasons", [])
                                if isinstance(r, dict)) or "-"
            self.say(f"upload of {name}: " + (
                f"verified, signed by {verdict.get('signer_name')}" if letter.verified_at
                else f"refused ({reasons})"))
        self.web.post(f"{path}sent", {})
        letter.refresh_from_db()
        self.say(f"marked sent ({'yes' if letter.sent_at else 'NO'}): {self._history()}")

    # -- SOP step 6: the kit and its assignment -------------------------------------------
    def checkout(self) -> None:
        from office.models import KitCheckout

        self.step("Office: the kit is handed to the officer with its self-test and condition")
        path = f"/checkout/new/?visit={self.visit_id}"
        values = form_values(self.web.get(path), "")
        values.update({"visit": str(self.visit_id), "taken_by": OFFICERS[0][0],
                       "condition": "baik", "confirm": "on"})
        page = self.web.post("/checkout/new/", values)
        row = KitCheckout.objects.using(self.alias).filter(
            kit_id=self.kit_id, returned_at__isnull=True).first()
        if row is None:
            raise RuntimeError("the kit was not checked out: " + "; ".join(self._errors(page)))
        self.say(f"{self.kit_id} taken by {row.taken_by}, self-test "
                 f"{'passed' if row.out_selftest_ok else 'NOT passed'}, condition "
                 f"'{row.out_condition}', due back {row.due_on:%d-%m-%Y}")

    def send_assignment(self, wait: Callable[..., Any]) -> str:
        """Send the visit's assignment from its page; its id once the kit has it."""
        from office import visits
        from office.models import Assignment as Queued
        from office.models import Visit

        self.step("Office: the assignment goes from the visit page to the kit, sealed and "
                  "signed (only the verified targets)")
        self.web.post(f"/visits/{self.visit_id}/send/", {})
        visit = Visit.objects.using(self.alias).get(pk=self.visit_id)
        wait(lambda: visits.assignment_state(visit).code in ("delivered", "opened"), 30,
             "the kit to confirm it")
        row = Queued.objects.using(self.alias).get(kit_id=visit.kit_id,
                                                   assignment_id=visit.assignment_id)
        steps = [(label, at) for label, at in (
            ("queued", row.queued_at), ("sent", row.sent_at),
            ("received by the kit", row.delivered_at)) if at is not None]
        path = ", ".join(f"{label} +{at - row.queued_at:.1f} s" for label, at in steps)
        self.say(f"assignment {visit.assignment_id}: {path} (the visit page shows each); "
                 f"{self._history()}")
        return str(visit.assignment_id)

    def opened(self, wait: Callable[..., Any]) -> None:
        from office import visits
        from office.models import Visit

        visit = Visit.objects.using(self.alias).get(pk=self.visit_id)
        wait(lambda: visits.assignment_state(visit).code == "opened", 30,
             "the kit to report the assignment opened")
        self.say("the visit page now says 'dibuka di kit' (the kiosk opened it; the agent "
                 "told the office)")

    # -- SOP step 11 and after: the records close the targets -----------------------------
    def close_the_loop(self) -> None:
        from office import visits
        from office.models import KitCheckout, Target

        self.step("Office: the records close their targets; the kit comes back")
        self.web.get("/records/")  # opens and indexes what arrived; each closes its target
        rows = Target.objects.using(self.alias).filter(
            request_id=self.request_id).order_by("source_row")
        for row in rows:
            detail = f" ({row.detail})" if row.detail else ""
            self.say(f"target on row {row.source_row}: {row.status}{detail}")
        counts = visits.progress(self._request())
        self.say(f"request {LETTER_NUMBER}: {counts['closed']}/{counts['total']} closed; "
                 f"{self._history()}")
        out = KitCheckout.objects.using(self.alias).filter(
            kit_id=self.kit_id, returned_at__isnull=True).first()
        if out is not None:
            path = f"/checkout/{out.pk}/return/"
            values = form_values(self.web.get(path), "")
            values.update({"condition": "baik", "confirm": "on"})
            self.web.post(path, values)
            out.refresh_from_db()
            self.say(f"{self.kit_id} returned: {out.waiting_records} records still on it, "
                     f"{out.pending_targets} targets still pending (flagged on the return "
                     f"form)")
        move = form_values(self.web.get(f"/visits/{self.visit_id}/"), "/move/")
        left = move.get("targets") or []
        left = [left] if isinstance(left, str) else left
        if left:
            page = self.web.post(f"/visits/{self.visit_id}/move/",
                                 {"targets": left, "dest": "new"})
            values = form_values(page, "")
            later = dt.date.fromisoformat(str(values.get("visit_date")))
            values.update({"officers": [o for o, _ in OFFICERS], "kit_id": self.kit_id,
                           "save_anyway": "on"})
            page = self.web.post(self.web.last_url.split(self.web.url, 1)[-1], values)
            moved = Target.objects.using(self.alias).filter(pk__in=left).exclude(
                visit_id=self.visit_id).count()
            if moved != len(left):
                raise RuntimeError("the later visit was not saved: " +
                                   "; ".join(self._errors(page)))
            self.say(f"{moved} not recorded (the visit page offers those whose outcome is in; "
                     f"a pending one waits until the visit day is over) go on a later visit "
                     f"on {later:%d-%m-%Y} (the page's weekly suggestion), pending again; "
                     f"{self._history()}")


# -- reading a page's form as a browser would submit it -----------------------------------


class _Forms(HTMLParser):
    """Every ``<form>`` of a page with what submitting it unchanged would send."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, list[str]]]] = []
        self._fields: dict[str, list[str]] | None = None
        self._select: tuple[str, list[str], bool] | None = None  # name, first option, chosen
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._fields = {}
            self.forms.append((a.get("action", ""), self._fields))
            return
        if self._fields is None:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._fields.setdefault(name, []).append(a.get("value", "on"))
            elif kind not in ("submit", "button", "file", "reset"):
                self._fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and name:
            self._select = (name, [], False)
        elif tag == "option" and self._select is not None:
            sel_name, first, chosen = self._select
            value = a.get("value", "")
            if "disabled" in a:
                return
            if not first:
                first.append(value)
            if "selected" in a and not chosen:
                self._fields[sel_name] = [value]
                self._select = (sel_name, first, True)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None
        elif tag == "select" and self._select is not None and self._fields is not None:
            name, first, chosen = self._select
            if not chosen and first:
                self._fields[name] = [first[0]]
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._fields is not None:
            self._fields[self._textarea] = ["".join(self._text).lstrip("\n")]
            self._textarea = None


def form_values(page: str, action: str) -> dict[str, str | list[str]]:
    """What the page's form whose action contains ``action`` (or the first form with an
    empty action, for ``""``) would send as it stands: the page's own suggestions."""
    parser = _Forms()
    parser.feed(page)
    for form_action, fields in parser.forms:
        if (action and action in form_action) or (not action and not form_action):
            return {k: (v[0] if len(v) == 1 else v) for k, v in fields.items()
                    if k != "csrfmiddlewaretoken"}
    raise LookupError(f"no form posting to {action!r} on the page")
