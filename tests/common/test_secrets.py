"""SecretBox, key loading and the scrubbing of credentials from text."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from secret_locations import SECRET, azure_location, gcs_location, s3_location

from datapool.secret_key import ensure_key_file
from datapool.v1 import common_pb2
from services.common import secrets as secrets_module
from services.common.secrets import (
    MASK,
    Scrubber,
    ScrubbingFilter,
    SecretBox,
    SecretKeyError,
    has_credentials,
    load_secret_box,
    redacted,
    secret_values,
)


def test_seal_and_open_round_trip() -> None:
    box = SecretBox(SecretBox.generate_key())
    sealed = box.seal(b"location bytes")
    assert b"location bytes" not in sealed
    assert box.open(sealed) == b"location bytes"


def test_wrong_key_is_named() -> None:
    sealed = SecretBox(SecretBox.generate_key()).seal(b"x")
    with pytest.raises(SecretKeyError, match="wrong secret key"):
        SecretBox(SecretBox.generate_key()).open(sealed)


def test_a_value_opened_again_is_not_decrypted_again_and_stays_bound_to_its_box(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = SecretBox(SecretBox.generate_key())
    sealed, other = box.seal(b"pool"), box.seal(b"input")
    decrypted: list[bytes] = []
    decrypt = box._fernet.decrypt

    def counted(token: bytes) -> bytes:
        decrypted.append(token)
        return decrypt(token)

    monkeypatch.setattr(box._fernet, "decrypt", counted)
    assert [box.open(sealed), box.open(other), box.open(sealed), box.open(other)] == [b"pool", b"input"] * 2
    assert len(decrypted) == 2
    with pytest.raises(SecretKeyError, match="wrong secret key"):
        SecretBox(SecretBox.generate_key()).open(sealed)


def test_opened_values_are_remembered_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets_module, "OPENED_MAX", 3)
    box = SecretBox(SecretBox.generate_key())
    for i in range(10):
        assert box.open(box.seal(b"%d" % i)) == b"%d" % i
        assert len(box._opened) <= 3


def test_malformed_key_is_refused_with_a_hint() -> None:
    with pytest.raises(SecretKeyError, match="not a valid Fernet key"):
        SecretBox("too-short")


def test_key_file_wins_over_env_and_is_created_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_key_file(tmp_path / "state" / "secret.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert ensure_key_file(path).read_bytes() == first, "an existing key must never be replaced"
    monkeypatch.setenv("DATAPOOL_SECRET_KEY", SecretBox.generate_key().decode())
    box = load_secret_box(path)
    assert box is not None
    assert SecretBox(first.strip()).open(box.seal(b"x")) == b"x"


def test_key_from_env_file_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAPOOL_SECRET_KEY", raising=False)
    monkeypatch.delenv("DATAPOOL_SECRET_KEY_FILE", raising=False)
    assert load_secret_box() is None
    key = SecretBox.generate_key()
    monkeypatch.setenv("DATAPOOL_SECRET_KEY", key.decode())
    box = load_secret_box()
    assert box is not None and SecretBox(key).open(box.seal(b"y")) == b"y"
    monkeypatch.setenv("DATAPOOL_SECRET_KEY", "nonsense")
    with pytest.raises(SecretKeyError, match="DATAPOOL_SECRET_KEY"):
        load_secret_box()
    monkeypatch.setenv("DATAPOOL_SECRET_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(SecretKeyError, match="cannot read the secret key file"):
        load_secret_box()


@pytest.mark.parametrize("make", [s3_location, azure_location, gcs_location])
def test_redacted_and_scrubbed(make: object) -> None:
    location = make()  # type: ignore[operator]
    assert has_credentials(location)
    masked = redacted(location).SerializeToString()
    for secret in secret_values(location):
        assert secret.encode() not in masked
    scrubber = Scrubber()
    scrubber.register(location)
    text = f"boom: {location} {secret_values(location)}"
    clean = scrubber.scrub(text)
    for secret in secret_values(location):
        assert secret not in clean
    assert MASK in clean


def test_local_location_has_no_credentials() -> None:
    local = common_pb2.StoreLocation(local=common_pb2.LocalLocation(root="/data"))
    assert not has_credentials(local)
    assert redacted(local) == local


def test_any_sas_signature_is_masked_even_unregistered() -> None:
    text = "GET https://acct.blob.core.windows.net/c/x?sv=1&sig=SECRETSIG123&se=2 failed"
    assert "SECRETSIG123" not in Scrubber().scrub(text)


def test_log_filter_masks_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    scrubber = Scrubber()
    scrubber.register(s3_location())
    logger = logging.getLogger("test.secrets")
    caplog.handler.addFilter(ScrubbingFilter(scrubber))
    with caplog.at_level(logging.INFO, logger="test.secrets"):
        logger.info("key is %s", SECRET)
        try:
            raise RuntimeError(f"SDK said {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    assert SECRET not in caplog.text
    assert MASK in caplog.text
