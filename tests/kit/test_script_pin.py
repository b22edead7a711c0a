"""Visit scripts never carry a PIN: it comes from the environment (pin_env) or stdin."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.scripted_visit import load_script
from sync.errors import ValidationError

VISIT = '\n[[visit]]\ntarget = 1\n'


def test_script_with_pin_in_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "visit.toml"
    path.write_text('officer = "P-0001"\npin = "4829135071"\n' + VISIT, encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_script(path, read_pin=lambda _prompt: "4829135071")
    assert err.value.code == "script_pin"
    for lang in ("en", "id"):
        assert "pin_env" in err.value.text(lang) and "stdin" in err.value.text(lang)
    assert "PIN" in err.value.text("id")


def test_script_pin_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "visit.toml"
    path.write_text('officer = "P-0001"\npin_env = "TEST_OFFICER_PIN"\n' + VISIT,
                    encoding="utf-8")
    monkeypatch.setenv("TEST_OFFICER_PIN", "4829135071")
    assert load_script(path).pin == "4829135071"
    monkeypatch.delenv("TEST_OFFICER_PIN")
    with pytest.raises(ValidationError, match="TEST_OFFICER_PIN"):
        load_script(path)


def test_script_pin_from_stdin_reader(tmp_path: Path) -> None:
    path = tmp_path / "visit.toml"
    path.write_text('officer = "P-0001"\n' + VISIT, encoding="utf-8")
    assert load_script(path, read_pin=lambda _prompt: "4829135071").pin == "4829135071"
    with pytest.raises(ValidationError, match="pin_env"):
        load_script(path)
