"""pandas over storagegw:// URLs: what the fsspec file system is for."""

from __future__ import annotations

import fsspec
import pandas

from tests.conftest import RunningGateway


def test_a_data_frame_goes_to_the_gateway_and_back(fs_gateway: RunningGateway, fs_root: str):
    frame = pandas.DataFrame(
        {"region": ["north", "south", "east"], "total": [12, 7, 30], "share": [0.24, 0.14, 0.62]}
    )
    options = {"target": fs_gateway.target}
    for name in ("frame.csv", "frame.csv.gz"):  # the second compressed, by its suffix
        url = f"storagegw://default/{fs_root}/{name}"
        frame.to_csv(url, index=False, storage_options=options)
        pandas.testing.assert_frame_equal(pandas.read_csv(url, storage_options=options), frame)
    stored = fsspec.filesystem("storagegw", bucket="default", **options)
    assert stored.cat_file(f"{fs_root}/frame.csv").startswith(b"region,total,share\n")
    assert stored.cat_file(f"{fs_root}/frame.csv.gz")[:2] == b"\x1f\x8b"  # gzip's magic
