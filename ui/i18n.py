"""Every word the kiosk shows, in Bahasa Indonesia (first) and English.

kv rules read ``app.t["key"]``; Python code calls :func:`tr`. ``app.t`` is
replaced as a whole when the officer switches language, so every label
bound to it changes at once. Labels of domain values (fingers, outcomes,
exceptions, statuses) come from the enums' own ``.label(lang)`` in
:mod:`sync.domain`, and fault messages from ``JaranIjoError.text(lang)``, so
this table never repeats them.

>>> tr("home.title", "en")
'Today'
>>> tr("fingers.attempts", "id", n=2)
'Sisa percobaan: 2'
"""

from __future__ import annotations

from kit.workflow import STEP_LABELS

LANGS = ("id", "en")

# key: (Bahasa Indonesia, English). Keep the Indonesian short: it is the longer one.
TEXT: dict[str, tuple[str, str]] = {
    # general
    "app.title": ("Jaran Ijo", "Jaran Ijo"),
    "lang.switch": ("English", "Bahasa Indonesia"),
    "ok": ("OK", "OK"),
    "cancel": ("Batal", "Cancel"),
    "back": ("Kembali", "Back"),
    "next": ("Lanjut", "Next"),
    "yes": ("Ya", "Yes"),
    "no": ("Tidak", "No"),
    "close": ("Tutup", "Close"),
    "busy": ("Mohon tunggu...", "Please wait..."),
    "error.title": ("Ada masalah", "Something went wrong"),
    "error.unexpected": ("Kesalahan tak terduga pada kiosk ({kind})",
                         "Unexpected error in the kiosk ({kind})"),
    "error.unexpected_hint": ("Catat waktunya dan hubungi teknisi; data yang sudah "
                              "tersimpan aman", "Note the time and call the technician; "
                              "data already saved is safe"),
    # status bar
    "status.battery_unknown": ("Baterai ?", "Battery ?"),
    "status.no_signal": ("Sinyal —", "Signal —"),
    "status.gnss_fix": ("GPS ±{acc} m", "GPS ±{acc} m"),
    "status.gnss_none": ("GPS —", "GPS —"),
    "status.outbox": ("{n} menunggu kirim", "{n} waiting to upload"),
    "status.outbox.none": ("Terkirim semua", "All sent"),
    # login / lock
    "login.title": ("Masuk petugas", "Officer login"),
    "login.officer": ("ID petugas", "Officer ID"),
    "login.pin": ("PIN", "PIN"),
    "login.enter": ("Masuk", "Log in"),
    "login.clear": ("Hapus", "Clear"),
    "login.finger": ("Masuk dengan sidik jari", "Log in by fingerprint"),
    "login.finger_prompt": ("Letakkan jari petugas di sensor", "Place the officer's finger on "
                            "the sensor"),
    "login.locked": ("Layar terkunci. Masukkan PIN", "Screen locked. Enter the PIN"),
    "login.checking": ("Memeriksa PIN...", "Checking the PIN..."),
    "login.pick_officer": ("Pilih ID petugas", "Choose the officer ID"),
    "login.technician": ("Teknisi", "Technician"),
    # home
    "home.title": ("Hari ini", "Today"),
    "home.assignment": ("{village}, Kec. {kecamatan} · {date} · {n} sasaran",
                        "{village}, {kecamatan} district · {date} · {n} targets"),
    "home.no_assignment": ("Belum ada penugasan di kit. Minta kantor mengirimkannya",
                           "No assignment on the kit yet. Ask the office to send it"),
    "home.search": ("Cari nama, NIK, dusun", "Search name, NIK, hamlet"),
    "home.logout": ("Keluar", "Log out"),
    "home.lock": ("Kunci", "Lock"),
    "home.drafts": ("{n} rekaman dijeda: ketuk sasaran untuk melanjutkan",
                    "{n} paused recordings: tap the target to resume"),
    "home.draft_soon": ("Draf segera kedaluwarsa: selesaikan hari ini",
                        "A draft expires soon: finish it today"),
    "home.enroll": ("Daftarkan jari", "Enrol my finger"),
    "device.camera": ("Kamera: {state}", "Camera: {state}"),
    "device.fingerprint": ("Sensor sidik jari: {state}", "Fingerprint sensor: {state}"),
    "device.ready": ("siap", "ready"),
    "device.absent": ("tidak terhubung", "not connected"),
    "device.checking": ("memeriksa...", "checking..."),
    "home.draft_until": ("draf berlaku s.d. {until}", "draft kept until {until}"),
    # officer's own fingerprint, for unlocking the locked screen
    "enroll.title": ("Daftarkan sidik jari petugas", "Enrol the officer's finger"),
    "enroll.place": ("Letakkan jari telunjuk kanan Anda di sensor",
                     "Place your right index finger on the sensor"),
    "enroll.lift": ("Angkat jari dari sensor", "Lift the finger off the sensor"),
    "enroll.place-again": ("Letakkan jari yang sama sekali lagi",
                           "Place the same finger once more"),
    "enroll.done": ("Sidik jari tersimpan. Layar terkunci kini bisa dibuka dengan jari ini",
                    "Fingerprint saved. The locked screen now opens with this finger"),
    "home.paused_tag": ("DIJEDA", "PAUSED"),
    "home.nothing_found": ("Tidak ada sasaran yang cocok", "No matching target"),
    # target detail
    "target.title": ("Data sasaran", "Target"),
    "target.nik": ("NIK", "NIK"),
    "target.born": ("Lahir", "Born"),
    "target.address": ("Alamat", "Address"),
    "target.category": ("Kategori", "Category"),
    "target.place": ("Tempat", "Place"),
    "target.notes": ("Catatan", "Notes"),
    "target.status": ("Status", "Status"),
    "target.start": ("Mulai rekam", "Start recording"),
    "target.resume": ("Lanjutkan rekaman", "Resume recording"),
    "target.not_recorded": ("Tidak dapat direkam", "Cannot be recorded"),
    "target.preflight_warn": ("Perhatian: {items}", "Attention: {items}"),
    "target.done": ("Sasaran ini sudah selesai", "This target is done"),
    "target.paused": ("Dijeda; draf berlaku s.d. {until}", "Paused; draft kept until {until}"),
    # not recorded
    "notrec.title": ("Alasan tidak direkam", "Why not recorded"),
    "notrec.note": ("Keterangan (boleh kosong)", "Note (optional)"),
    "notrec.why_choose": ("Pilih dulu alasan tidak direkam", "Choose the reason first"),
    "sign.why_empty": ("Belum ada tanda tangan di kotak", "Nothing signed in the box yet"),
    "notrec.confirm": ("Simpan & segel", "Save & seal"),
    "notrec.pick": ("Pilih alasan dulu", "Choose a reason first"),
    "notrec.who": ("Warga: {name} · NIK {nik}", "Resident: {name} · NIK {nik}"),
    "notrec.sure_title": ("Segel untuk selamanya?", "Seal for good?"),
    "notrec.sure": ("Rekaman {name} ditutup sebagai \"{outcome}\" dan disegel. Setelah "
                    "disegel tidak dapat diubah lagi.",
                    "The recording of {name} is closed as \"{outcome}\" and sealed. Once "
                    "sealed it cannot be changed."),
    "notrec.sure_yes": ("Ya, segel", "Yes, seal"),
    # recording header
    "rec.pause": ("Jeda", "Pause"),
    "rec.step": ("Langkah {n}/6", "Step {n}/6"),
    # the steps' names are the workflow's own (kit.workflow.STEP_LABELS)
    **{f"step.{step.value}": pair for step, pair in STEP_LABELS.items()},
    # photo
    "photo.hint_ok": ("Wajah pas. Tekan Ambil foto", "Face fits. Press Take photo"),
    "photo.capture": ("Ambil foto", "Take photo"),
    "photo.use": ("Pakai foto ini", "Use this photo"),
    "photo.retake": ("Foto ulang", "Retake"),
    "photo.score": ("Mutu {score}/100 (batas {threshold})", "Quality {score}/100 "
                    "(threshold {threshold})"),
    "photo.kept": ("Foto terbaik disimpan: {score}/100", "Best photo kept: {score}/100"),
    "photo.reason_title": ("Mutu di bawah batas. Pilih alasan:", "Quality below threshold. "
                           "Choose a reason:"),
    "photo.reason.cannot_sit": ("Warga tidak dapat duduk", "Resident cannot sit up"),
    "photo.reason.bedridden": ("Terbaring, tidak dapat dipindah", "Bedridden, cannot be moved"),
    "photo.reason.light": ("Cahaya ruangan kurang", "Poor room light"),
    "photo.reason.uncooperative": ("Warga tidak kooperatif", "Resident not cooperative"),
    "photo.no_camera": ("Kamera tidak tersedia", "Camera not available"),
    "photo.capturing": ("Mengambil foto...", "Taking the photo..."),
    # approval
    "approval.title": ("Tunjukkan foto ke warga / keluarga", "Show the photo to the resident "
                       "or family"),
    "approval.question": ("Apakah foto ini disetujui?", "Is this photo approved?"),
    "approval.yes": ("Disetujui", "Approved"),
    "approval.no": ("Tidak, foto ulang", "No, retake"),
    # fingerprints
    "fingers.place": ("Letakkan {finger} di sensor", "Place the {finger} on the sensor"),
    "fingers.reading": ("Membaca sidik jari... {pct}%", "Reading the fingerprint... {pct}%"),
    "fingers.waiting": ("Menunggu jari...", "Waiting for the finger..."),
    "fingers.quality": ("{finger}: mutu {score}/100", "{finger}: quality {score}/100"),
    "fingers.low_accepted": ("Mutu rendah diterima", "Low quality accepted"),
    "fingers.attempts": ("Sisa percobaan: {n}", "Attempts left: {n}"),
    "fingers.scan": ("Pindai", "Scan"),
    "fingers.retry": ("Ulangi", "Retry"),
    "fingers.exception": ("Pengecualian", "Exception"),
    "fingers.accept": ("Terima apa adanya", "Accept as is"),
    "fingers.clear": ("Hapus jari ini", "Clear this finger"),
    "fingers.all_done": ("Semua jari selesai", "All fingers done"),
    "fingers.exception_title": ("Mengapa {finger} tidak dapat direkam?",
                                "Why can the {finger} not be recorded?"),
    "fingers.exception_note": ("Keterangan: ditentukan petugas", "Note: decided by the officer"),
    "fingers.right_hand": ("Tangan kanan", "Right hand"),
    "fingers.left_hand": ("Tangan kiri", "Left hand"),
    "fingers.cancel": ("Hentikan", "Stop"),
    "fingers.excepted": ("{finger}: {reason}. Ketuk \"Hapus jari ini\" untuk merekamnya",
                         "{finger}: {reason}. Tap \"Clear this finger\" to record it"),
    "fingers.scope_title": ("Berlaku untuk:", "Applies to:"),
    "fingers.scope_one": ("Jari ini saja", "This finger only"),
    "fingers.scope_hand": ("Seluruh {hand}", "The whole {hand}"),
    "fingers.scope_remaining": ("Semua jari yang tersisa", "All remaining fingers"),
    "fingers.other_title": ("Keterangan pengecualian \"Lainnya\"", "Note for the exception "
                            "\"Other\""),
    "fingers.other_hint": ("Tulis alasannya", "Write the reason"),
    "fingers.other_needed": ("Tulis keterangan dulu", "Write a note first"),
    # signature
    "sign.prompt": ("Minta warga tanda tangan di kotak putih", "Ask the resident to sign in "
                    "the white box"),
    "sign.clear": ("Hapus", "Clear"),
    "sign.done": ("Simpan tanda tangan", "Save signature"),
    "sign.cannot": ("Tidak dapat tanda tangan", "Cannot sign"),
    "sign.cannot_title": ("Mengapa warga tidak dapat tanda tangan?",
                          "Why can the resident not sign?"),
    "sign.reason.weak": ("Tangan lemah / lumpuh", "Hands weak or paralysed"),
    "sign.reason.illiterate": ("Tidak dapat menulis", "Cannot write"),
    "sign.reason.unconscious": ("Tidak sadar / tidak responsif", "Unconscious or unresponsive"),
    "sign.reason.thumbprint": ("Cap jempol sebagai ganti tanda tangan",
                               "Thumbprint instead of a signature"),
    "sign.reason.other": ("Lainnya", "Other"),
    "sign.other_title": ("Alasan lain tidak dapat tanda tangan", "Other reason for no "
                         "signature"),
    "sign.other_hint": ("Tulis alasannya", "Write the reason"),
    # witness
    "witness.title": ("Saksi pendamping", "Accompanying witness"),
    "witness.name": ("Nama saksi", "Witness's name"),
    "witness.role": ("Peran (mis. perangkat desa, anak)", "Role (e.g. village staff, child)"),
    "witness.consent": ("Saksi setuju dan hadir", "The witness agrees and is present"),
    "witness.staff": ("Pendamping desa dari penugasan:", "Village staff from the assignment:"),
    "witness.role_staff": ("perangkat desa", "perangkat desa"),
    "witness.need_name": ("Isi nama saksi", "Enter the witness's name"),
    "witness.need_role": ("Isi peran saksi", "Enter the witness's role"),
    "witness.need_consent": ("Centang persetujuan saksi", "Tick the witness's consent"),
    # review
    "review.title": ("Periksa sebelum disegel", "Check before sealing"),
    "review.photo": ("Foto: mutu {score}/100", "Photo: quality {score}/100"),
    "review.photo_missing": ("Foto: belum ada", "Photo: missing"),
    "review.fingers": ("Sidik jari: {captured} terekam, {exceptions} pengecualian, "
                       "{low} mutu rendah", "Fingerprints: {captured} captured, "
                       "{exceptions} exceptions, {low} low quality"),
    "review.signature": ("Tanda tangan: ada", "Signature: present"),
    "review.cannot_sign": ("Tanda tangan: tidak dapat ({reason})",
                           "Signature: cannot sign ({reason})"),
    "review.witness": ("Saksi: {name} ({role})", "Witness: {name} ({role})"),
    "review.consent_yes": ("setuju dan hadir", "agrees and is present"),
    "review.consent_no": ("belum menyatakan setuju", "has not consented"),
    "review.outcome": ("Hasil: {outcome}", "Outcome: {outcome}"),
    "review.seal": ("Segel & simpan", "Seal & save"),
    "review.sealing": ("Menyegel dan menyimpan...", "Sealing and saving..."),
    "review.edit": ("Ubah", "Change"),
    # sealed
    "sealed.title": ("Rekaman tersimpan dan disegel", "Recording saved and sealed"),
    "sealed.detail": ("{outcome} · {size} KB · menunggu unggah", "{outcome} · {size} KB · "
                      "waiting for upload"),
    "sealed.privacy": ("Kit tidak dapat membuka rekaman ini lagi; hanya kantor yang bisa",
                       "The kit cannot open this recording again; only the office can"),
    "sealed.home": ("Ke daftar sasaran", "To the target list"),
    # paused
    "paused.title": ("Rekaman dijeda", "Recording paused"),
    "paused.detail": ("Semua data sudah disimpan terenkripsi sebagai draf. Lanjutkan dari "
                      "daftar sasaran sebelum {until}; setelah itu draf terhapus",
                      "Everything is saved, encrypted, as a draft. Resume from the target "
                      "list before {until}; after that the draft is deleted"),
    "paused.resume": ("Lanjutkan sekarang", "Resume now"),
    "paused.home": ("Ke daftar sasaran", "To the target list"),
    # technician
    "tech.title": ("Menu teknisi", "Technician menu"),
    "tech.pin": ("PIN teknisi", "Technician PIN"),
    "tech.wrong_pin": ("PIN teknisi salah", "Wrong technician PIN"),
    "tech.selftest": ("Uji mandiri", "Self-test"),
    "tech.devices": ("Info perangkat", "Device info"),
    "tech.log": ("Log terbaru", "Recent log"),
    "tech.ok": ("baik", "ok"),
    "tech.warn": ("PERIKSA", "CHECK"),
    "tech.running": ("Menguji...", "Testing..."),
    # point 8: why a button is disabled
    "why.needs": ("Belum ada: {items}", "Still needed: {items}"),
    "why.more": ("{items}, dan {n} lagi", "{items} and {n} more"),
    "why.scanning": ("Tunggu: pemindaian sedang berjalan", "Wait: a scan is running"),
    "why.all_done": ("Semua jari sudah selesai", "Every finger is done"),
    "why.nothing_kept": ("Belum ada hasil untuk jari ini", "Nothing kept for this finger yet"),
    "why.accept_poor": ("Hanya untuk hasil bermutu rendah", "Only for a low-quality scan"),
    "why.excepted": ("Hapus pengecualiannya dulu", "Delete its exception first"),
    "why.pin_first": ("Ketik PIN dulu di papan angka", "Type the PIN on the keypad first"),
    "why.capturing": ("Tunggu: foto sedang diambil", "Wait: the photo is being taken"),
    "why.no_sensor": ("Sensor sidik jari tidak tersedia", "Fingerprint sensor not available"),
    "why.fingers_left": ("Belum direkam: {n} jari", "Fingers still to do: {n}"),
    # first login: the officer's own PIN
    "set_pin.title": ("Buat PIN baru", "Choose your PIN"),
    "set_pin.officer": ("ID petugas: {officer}", "Officer ID: {officer}"),
    "set_pin.why": ("Kode pendaftaran hanya untuk masuk pertama kali",
                    "The enrolment code is for the first login only"),
    "set_pin.step1": ("Masukkan PIN baru ({low}-{high} angka)",
                      "Enter a new PIN ({low}-{high} digits)"),
    "set_pin.step2": ("Ulangi PIN baru", "Repeat the new PIN"),
    "set_pin.save": ("Simpan PIN", "Save the PIN"),
    "set_pin.again": ("Ulangi dari awal", "Start again"),
    "set_pin.saving": ("Menyimpan PIN baru...", "Saving the new PIN..."),
}


# Values that are domain labels ("Ibu jari kanan", "Tangan kiri"): capitalised to stand
# alone, lower case where a sentence puts them after its first word.
MID_SENTENCE = ("finger", "hand")


def tr(key: str, lang: str = "id", **values: object) -> str:
    """The text for ``key`` in ``lang`` with ``values`` filled in; the key itself if unknown
    (so a missing entry shows up on screen and in the tests instead of crashing).

    A count ``n`` of 0 takes the ``key.none`` entry when there is one ("Terkirim semua",
    not "0 menunggu kirim"); a finger or hand label inside a sentence starts lower case.

    >>> tr("fingers.place", "id", finger="Ibu jari kanan")
    'Letakkan ibu jari kanan di sensor'
    >>> tr("status.outbox", "en", n=0)
    'All sent'
    """
    if values.get("n") == 0 and f"{key}.none" in TEXT:
        key = f"{key}.none"
    pair = TEXT.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    if not values:
        return text
    for name in MID_SENTENCE:
        value = values.get(name)
        if isinstance(value, str) and value and not text.startswith(f"{{{name}}}"):
            values[name] = value[0].lower() + value[1:]
    return text.format(**values)


def mask_nik(nik: str) -> str:
    """A NIK as a screen shows it beside the name: the last four digits only (enough to
    tell two residents apart, not enough to use the number)."""
    return "•" * 12 + nik[-4:] if len(nik) > 4 else nik


def join_parts(*parts: str, sep: str = ", ") -> str:
    """Non-empty parts of an address (or any list) joined: no stray commas for a street
    or RW the office left blank."""
    return sep.join(p.strip() for p in parts if p and p.strip())


class Table(dict[str, str]):
    """One language's view of :data:`TEXT`, for kv rules (``app.t["key"]``)."""

    def __init__(self, lang: str) -> None:
        super().__init__({key: tr(key, lang) for key in TEXT})
        self.lang = lang

    def __missing__(self, key: str) -> str:
        return key
