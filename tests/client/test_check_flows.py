"""The flows of finalize_upload and scan_objects, step by step, without a gateway."""

from __future__ import annotations

import pytest

from storagegw import _checks
from storagegw._effects import Call
from storagegw.v1 import storage_pb2 as pb


def test_scan_objects_sums_every_page_and_asks_for_the_next_while_there_is_one() -> None:
    request = pb.ScanObjectsRequest(bucket="b", prefix="p/", page_size=2)
    flow = _checks._scan(request, 5.0)
    pages = [
        pb.ScanObjectsResponse(scanned=2, clean=2, marked_clean=1, next_page_token="t1"),
        pb.ScanObjectsResponse(
            scanned=2,
            clean=1,
            changed=1,
            infected=[pb.ScanFind(key="p/x", signature="Sig", quarantine_key="b/p/x")],
            next_page_token="t2",
        ),
        pb.ScanObjectsResponse(scanned=1, clean=1),
    ]
    tokens = []
    call = next(flow)
    for page in pages:
        assert isinstance(call, Call)
        assert (call.method, call.timeout) == ("ScanObjects", 5.0)
        tokens.append(call.request.page_token)
        try:
            call = flow.send(page)
        except StopIteration as end:
            report = end.value
            break
    else:
        pytest.fail("the flow asked for a page after the last")
    assert tokens == ["", "t1", "t2"]
    assert (report.scanned, report.clean, report.marked_clean, report.changed) == (5, 4, 1, 1)
    assert report.infected == [_checks.ScanFind("p/x", "Sig", "", "b/p/x")]


def test_finalize_upload_sends_the_pending_name_and_answers_the_object() -> None:
    request = pb.FinalizeUploadRequest(bucket="b", pending_upload="pending")
    flow = _checks._finalize(request, None)
    call = next(flow)
    assert isinstance(call, Call)
    assert (call.method, call.request) == ("FinalizeUpload", request)
    response = pb.FinalizeUploadResponse(object=pb.ObjectInfo(bucket="b", key="k", size=3))
    with pytest.raises(StopIteration) as end:
        flow.send(response)
    assert (end.value.value.key, end.value.value.size) == ("k", 3)
