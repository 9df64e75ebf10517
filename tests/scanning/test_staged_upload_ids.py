"""An upload id of a scanning bucket carries its pending key and the write's
conditions, which the promotion checks; ids of other buckets carry neither."""

from __future__ import annotations

import pytest

from gateway.core.upload_ids import UploadIds
from gateway.domain.objects import NO_CONDITIONS, Conditions

SECRET = b"staged-upload-ids-test-secret-0123456789"


@pytest.mark.parametrize(
    "conditions",
    [
        NO_CONDITIONS,
        Conditions(if_none_match="*"),
        Conditions(if_generation_match=0),
        Conditions(if_match='"etag"', if_generation_not_match=7),
    ],
)
def test_a_staged_upload_id_names_its_pending_key_and_conditions(conditions: Conditions) -> None:
    ids = UploadIds(SECRET)
    upload_id, issued = ids.issue(
        "local", "files", "a/b.bin", "h", stored_key=".pending/123", conditions=conditions
    )
    opened = ids.open(upload_id)
    assert opened == issued
    assert (opened.key, opened.driver_key) == ("a/b.bin", ".pending/123")
    assert opened.conditions == conditions


def test_an_unstaged_upload_id_is_of_its_key() -> None:
    ids = UploadIds(SECRET)
    upload_id, _ = ids.issue("local", "files", "a/b.bin", "h")
    opened = ids.open(upload_id)
    assert (opened.stored_key, opened.driver_key, opened.conditions) == (
        "",
        "a/b.bin",
        NO_CONDITIONS,
    )
