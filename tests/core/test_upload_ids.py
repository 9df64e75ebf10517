"""Upload ids (gateway/upload_ids.py): opaque, unforgeable, expiring, and the
same to every replica that shares the secret."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.core.upload_ids import MAX_TOKEN_CHARS, UploadIds
from gateway.domain.errors import GatewayError, Reason
from gateway.rpc.status import status_code

SECRET = b"0123456789abcdef0123456789abcdef"
SESSION_URL = "https://storage.googleapis.com/upload/storage/v1/b/b/o?upload_id=CAPABILITY"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _refused(ids: UploadIds, token: str) -> Reason:
    with pytest.raises(GatewayError) as caught:
        ids.open(token)
    return caught.value.reason


def test_round_trip_on_another_replica_with_the_same_secret() -> None:
    clock = Clock(1_000_000.0)
    token, ref = UploadIds(SECRET, lifetime_s=3600, clock=clock).issue(
        "gcs", "archive", "dir/日本.bin", SESSION_URL
    )
    assert (ref.backend, ref.bucket, ref.key, ref.handle) == (
        "gcs",
        "archive",
        "dir/日本.bin",
        SESSION_URL,
    )
    assert ref.expire_time_unix == 1_003_600
    replica = UploadIds(SECRET, lifetime_s=60, clock=clock)  # its own lifetime setting
    assert replica.open(token) == ref


def test_the_token_hides_what_it_names() -> None:
    token, ref = UploadIds(SECRET).issue("gcs", "archive", "secret-plans.txt", SESSION_URL)
    assert token.isascii()
    for hidden in ("CAPABILITY", "secret-plans", "archive"):
        assert hidden not in token
    assert "CAPABILITY" not in repr(ref)
    assert SECRET.decode() not in repr(UploadIds(SECRET))


def test_another_secret_cannot_open_it() -> None:
    token, _ = UploadIds(SECRET).issue("s3", "b", "k", "upload-1")
    other = UploadIds(b"another-secret-of-32-bytes-long!")
    assert _refused(other, token) is Reason.INVALID_UPLOAD_ID


def test_any_altered_character_is_refused() -> None:
    ids = UploadIds(SECRET)
    token, _ = ids.issue("s3", "b", "k", "upload-1")
    # Up to the last 4 characters: base64's final group may have bits that
    # decode to nothing, so changing them need not change the bytes.
    for position in range(0, len(token) - 4, 7):
        replacement = "A" if token[position] != "A" else "B"
        altered = token[:position] + replacement + token[position + 1 :]
        assert _refused(ids, altered) is Reason.INVALID_UPLOAD_ID, position
    assert _refused(ids, token[:-4]) is Reason.INVALID_UPLOAD_ID


@pytest.mark.parametrize(
    "garbage", ["", "not-a-token", "é" * 10, "A" * (MAX_TOKEN_CHARS + 1), "gAAAAA=="]
)
def test_garbage_is_invalid(garbage: str) -> None:
    assert _refused(UploadIds(SECRET), garbage) is Reason.INVALID_UPLOAD_ID


def test_expiry() -> None:
    clock = Clock(5_000.0)
    ids = UploadIds(SECRET, lifetime_s=100, clock=clock)
    token, ref = ids.issue("local", "default", "k", "state-1")
    clock.now = ref.expire_time_unix - 1
    assert ids.open(token) == ref
    clock.now = ref.expire_time_unix
    with pytest.raises(GatewayError) as caught:
        ids.open(token)
    assert caught.value.reason is Reason.UPLOAD_EXPIRED
    assert "expired" in caught.value.message


def test_reasons_map_to_the_documented_status_codes() -> None:
    assert status_code(Reason.INVALID_UPLOAD_ID) is grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(Reason.UPLOAD_EXPIRED) is grpc.StatusCode.NOT_FOUND


def test_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lifetime"):
        UploadIds(SECRET, lifetime_s=0)


def test_the_owner_travels_inside_the_id() -> None:
    ids = UploadIds(SECRET)
    token, ref = ids.issue("s3", "b", "tenants/tenant-a/k", "upload-1", owner="tenant-a")
    assert ref.owner == "tenant-a"
    assert ids.open(token).owner == "tenant-a"
    assert "tenant-a" not in token
    # Started while authentication is off: no owner.
    anonymous, _ = ids.issue("s3", "b", "k", "upload-2")
    assert ids.open(anonymous).owner == ""


def test_an_id_issued_before_uploads_had_owners_still_opens() -> None:
    """The payload as gateways wrote it before owners were recorded, sealed
    the way they sealed it (HKDF of the secret, Fernet)."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"storagegw upload-id v1"
    ).derive(SECRET)
    payload = {"v": 1, "b": "local", "k": "media", "o": "a.bin", "h": "rec-1", "e": 2**40}
    token = Fernet(base64.urlsafe_b64encode(key)).encrypt(json.dumps(payload).encode())
    ref = UploadIds(SECRET).open(token.decode())
    assert (ref.bucket, ref.key, ref.handle, ref.owner) == ("media", "a.bin", "rec-1", "")
