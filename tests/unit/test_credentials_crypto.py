"""The machine id and the machine-bound cipher: what a copied credential file runs into."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from wats.api.auth import Secret
from wats.credentials.crypto import (
    KDF_ITERATIONS,
    MACHINE_ID_FILE_ENV,
    SALT_BYTES,
    CredentialError,
    MachineCipher,
    current_machine_id,
    derive_key,
    load_or_create_salt,
)
from wats.platform import MachineIdUnavailable, machine_id

pytestmark = pytest.mark.timeout(30)

FAST = 1_000  # iterations for tests that are not about the iteration count
MACHINE_A = "0123456789abcdef0123456789abcdef"
MACHINE_B = "fedcba9876543210fedcba9876543210"


def test_machine_id_comes_from_the_first_readable_file_in_lower_case(tmp_path: Path) -> None:
    second = tmp_path / "dbus-machine-id"
    second.write_text(MACHINE_A.upper() + "\n")
    assert machine_id([tmp_path / "missing", second]) == MACHINE_A


def test_empty_machine_id_files_are_skipped_and_none_left_is_a_clear_error(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "machine-id"
    empty.write_text("\n")
    with pytest.raises(MachineIdUnavailable) as caught:
        machine_id([empty, tmp_path / "missing"])
    message = str(caught.value)
    assert str(empty) in message and str(tmp_path / "missing") in message
    assert MACHINE_ID_FILE_ENV in message


def test_this_machine_has_an_id() -> None:
    assert len(machine_id()) >= 8


def test_the_machine_id_file_variable_chooses_where_the_id_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "id"
    source.write_text(MACHINE_B)
    monkeypatch.setenv(MACHINE_ID_FILE_ENV, str(source))
    assert current_machine_id() == MACHINE_B
    source.unlink()
    with pytest.raises(CredentialError, match="cannot protect credentials"):
        current_machine_id()


def test_a_secret_round_trips_and_the_ciphertext_does_not_contain_it() -> None:
    cipher = MachineCipher(MACHINE_A, b"s" * SALT_BYTES, FAST)
    token = "dGVzdDpzZWNyZXQ="
    encrypted = cipher.encrypt(Secret(token))
    assert token not in encrypted and "secret" not in encrypted
    clear = cipher.decrypt(encrypted, key_check=cipher.key_check, what="API token", source=Path())
    assert clear.reveal() == token


def test_a_secret_from_another_machine_fails_with_a_message_naming_login() -> None:
    salt = b"s" * SALT_BYTES
    made_there = MachineCipher(MACHINE_A, salt, FAST)
    encrypted = made_there.encrypt(Secret("dGVzdDpzZWNyZXQ="))
    here = MachineCipher(MACHINE_B, salt, FAST)
    with pytest.raises(CredentialError) as caught:
        here.decrypt(encrypted, key_check=made_there.key_check, what="API token", source=Path("f"))
    assert "another machine" in str(caught.value)
    assert "wats-supervisor login" in str(caught.value)


def test_a_tampered_ciphertext_fails_with_a_message_naming_login() -> None:
    cipher = MachineCipher(MACHINE_A, b"s" * SALT_BYTES, FAST)
    encrypted = cipher.encrypt(Secret("dGVzdDpzZWNyZXQ="))
    flipped = encrypted[:20] + ("A" if encrypted[20] != "A" else "B") + encrypted[21:]
    with pytest.raises(CredentialError) as caught:
        cipher.decrypt(flipped, key_check=cipher.key_check, what="API token", source=Path("f"))
    assert "tampered" in str(caught.value) and "wats-supervisor login" in str(caught.value)
    assert "dGVzdDpzZWNyZXQ=" not in str(caught.value)


def test_the_salt_is_random_per_install_private_and_kept(tmp_path: Path) -> None:
    first = load_or_create_salt(tmp_path / "a" / "salt")
    second = load_or_create_salt(tmp_path / "b" / "salt")
    assert len(first) >= 16 and first != second
    assert load_or_create_salt(tmp_path / "a" / "salt") == first
    if os.name != "nt":
        assert stat.S_IMODE((tmp_path / "a" / "salt").stat().st_mode) == 0o600


def test_the_key_uses_at_least_600000_pbkdf2_iterations_and_is_derived_once() -> None:
    assert KDF_ITERATIONS >= 600_000
    derive_key.cache_clear()
    salt = os.urandom(SALT_BYTES)
    key = derive_key(MACHINE_A, salt)
    assert derive_key(MACHINE_A, salt) == key
    info = derive_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_the_cipher_repr_shows_no_key() -> None:
    cipher = MachineCipher(MACHINE_A, b"s" * SALT_BYTES, FAST)
    key = derive_key(MACHINE_A, b"s" * SALT_BYTES, FAST)
    text = repr(cipher)
    assert "redacted" in text and key.hex() not in text
    assert base64.urlsafe_b64encode(key).decode() not in text
