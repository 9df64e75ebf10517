"""The upload policy's parts on their own: the sniffer (real libmagic) on the
corpus of real file headers, the rules of type agreement, and reading
[buckets.NAME.upload_policy] with its errors."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.core import sniffing
from gateway.core.sniffing import SNIFF_WINDOW, sniff, sniff_type
from gateway.domain.errors import GatewayError, Reason
from gateway.domain.settings import ConfigError
from gateway.domain.type_rules import agrees, effective, essence
from gateway.domain.upload_policy import UploadPolicy
from tests.upload_policy.file_headers import CORPUS, DENIED, TEXT, Sample


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: s.name)
def test_the_sniffer_names_each_real_header(sample: Sample) -> None:
    assert sniff(sample.data) == sample.sniffed
    # Only the window is looked at; what follows it does not change the answer.
    assert sniff(sample.padded(4 * SNIFF_WINDOW)) == sample.sniffed
    assert asyncio.run(sniff_type(sample.data)) == sample.sniffed


def test_the_sniffer_names_no_bytes_and_unknown_bytes() -> None:
    assert sniff(b"") == "application/x-empty"
    assert sniff(random.Random(16).randbytes(SNIFF_WINDOW)) == "application/octet-stream"


def test_each_thread_sniffs_with_its_own_handle() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def sniff_all(answers: list[str]) -> None:
        for _ in range(50):
            answers.extend(sniff(sample.data) for sample in CORPUS)

    threads = [threading.Thread(target=sniff_all, args=(answers,)) for answers in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[sample.sniffed for sample in CORPUS] * 50] * 4


@pytest.mark.parametrize(
    ("declared", "sniffed", "agree"),
    [
        ("image/png", "image/png", True),
        ("image/jpg", "image/jpeg", True),  # an alias
        ("application/octet-stream", "application/x-executable", True),  # nothing declared
        ("text/csv", "text/plain", True),
        ("application/json", "text/plain", True),
        ("text/markdown", "text/csv", True),
        ("text/plain", "text/html", False),
        ("text/plain", "text/x-shellscript", False),
        ("image/png", "text/plain", False),
        ("image/png", "application/x-executable", False),
        ("image/png", "application/octet-stream", False),  # PNGs have a signature
        ("text/plain", "application/octet-stream", False),  # binary is no text
        ("application/x-parquet", "application/octet-stream", True),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/zip",
            True,
        ),
        ("application/pdf", "application/zip", False),
        ("image/png", "application/x-empty", True),
    ],
)
def test_agreement(declared: str, sniffed: str, agree: bool) -> None:
    assert agrees(essence(declared), sniffed) is agree


def test_a_generic_sniff_is_refined_by_an_agreeing_declaration() -> None:
    assert effective("text/csv", "text/plain") == "text/csv"
    assert effective("image/png", "text/plain") == "text/plain"
    assert effective("application/octet-stream", "image/png") == "image/png"
    assert essence("Text/CSV; charset=utf-8") == "text/csv"


def _refusal(call: object, *args: object) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        call(*args)  # type: ignore[operator]
    return raised.value


def test_request_checks_name_what_is_missing_or_wrong() -> None:
    policy = UploadPolicy(
        min_size=10,
        max_size=100,
        allowed_types=("image/*",),
        allowed_suffixes=(".png", ".jpg"),
        required_metadata=("owner",),
    )
    check = policy.check_request
    error = _refusal(check, "b", "a.gif", "image/gif", {"owner": "x"}, None)
    assert (error.reason, error.metadata) == (
        Reason.KEY_SUFFIX_NOT_ALLOWED,
        {"key": "a.gif", "allowed": ".png, .jpg"},
    )
    error = _refusal(check, "b", "a.PNG", "image/png", {"team": "x"}, None)
    assert (error.reason, error.metadata) == (Reason.METADATA_REQUIRED, {"missing": "owner"})
    error = _refusal(check, "b", "a.png", "application/pdf", {"Owner": "x"}, None)
    assert (error.reason, error.metadata) == (
        Reason.TYPE_NOT_ALLOWED,
        {"declared": "application/pdf", "bucket": "b"},
    )
    error = _refusal(check, "b", "a.png", "image/png", {"owner": "x"}, 5)
    assert (error.reason, error.metadata) == (
        Reason.OBJECT_TOO_SMALL,
        {"min_size": "10", "size": "5"},
    )
    error = _refusal(check, "b", "a.png", "image/png", {"owner": "x"}, 101)
    assert (error.reason, error.metadata) == (
        Reason.OBJECT_TOO_LARGE,
        {"size": "101", "limit": "100"},
    )
    # Nothing declared leaves the type to the sniff; a size not declared, to the bytes.
    check("b", "a.png", "application/octet-stream", {"owner": "x"}, None)


def test_sniffed_checks_carry_both_types_and_the_bucket() -> None:
    policy = UploadPolicy(denied_types=DENIED, require_type_match=True)
    error = _refusal(policy.check_sniffed, "b", "image/png", "application/x-executable")
    assert (error.reason, error.metadata) == (
        Reason.TYPE_MISMATCH,
        {"declared": "image/png", "sniffed": "application/x-executable", "bucket": "b"},
    )
    error = _refusal(policy.check_sniffed, "b", "", "text/html")
    assert (error.reason, error.metadata) == (
        Reason.TYPE_NOT_ALLOWED,
        {"declared": "application/octet-stream", "sniffed": "text/html", "bucket": "b"},
    )
    policy.check_sniffed("b", "text/csv", "text/plain")


def _load(tmp_path: Path, policy: str) -> config_module.Config:
    path = tmp_path / "buckets.toml"
    path.write_text(f"[buckets.media]\nbackend = 'memory'\n[buckets.media.upload_policy]\n{policy}")
    return config_module.load({"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": str(tmp_path)})


def test_a_policy_is_read_from_its_table(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "min_size = '1KiB'\nmax_size = '10MiB'\nallowed_types = ['image/*', 'Application/PDF']\n"
        "denied_types = ['text/html']\nrequire_type_match = true\n"
        "allowed_suffixes = ['.PNG', '.pdf']\nrequired_metadata = ['Owner']\n",
    )
    assert config.upload_policies() == {
        "media": UploadPolicy(
            min_size=1024,
            max_size=10 * 1024 * 1024,
            allowed_types=("image/*", "application/pdf"),
            denied_types=("text/html",),
            require_type_match=True,
            allowed_suffixes=(".png", ".pdf"),
            required_metadata=("owner",),
        )
    }
    assert _load(tmp_path, "").upload_policies() == {"media": UploadPolicy()}


@pytest.mark.parametrize(
    ("policy", "setting", "says"),
    [
        ("max_size = 'ten'", "max_size", "is not a size"),
        ("min_size = true", "min_size", "is not a size"),
        ("min_size = '2MiB'\nmax_size = '1MiB'", "max_size", "is below min_size"),
        ("allowed_types = 'image/*'", "allowed_types", "must be a list"),
        ("allowed_types = ['image']", "allowed_types", "is not a media type pattern"),
        ("denied_types = ['*/html']", "denied_types", "is not a media type pattern"),
        ("require_type_match = 'yes'", "require_type_match", "must be true or false"),
        ("allowed_suffixes = ['a/.png']", "allowed_suffixes", "is not a key suffix"),
        ("required_metadata = ['a b']", "required_metadata", "is not a user metadata name"),
        ("required_metadata = ['']", "required_metadata", "must be a list of non-empty"),
        ("max_bytes = 1", "", "unknown setting(s) max_bytes"),
    ],
)
def test_a_bad_setting_is_named(tmp_path: Path, policy: str, setting: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, policy)
    name = "buckets.media.upload_policy" + (f".{setting}" if setting else "")
    assert raised.value.setting == name
    assert says in str(raised.value)


def test_the_policy_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "buckets.toml"
    path.write_text("[buckets.media]\nbackend = 'memory'\nupload_policy = 'strict'\n")
    with pytest.raises(ConfigError, match=r"buckets\.media\.upload_policy: must be a table"):
        config_module.load({"GATEWAY_CONFIG": str(path), "STORAGE_BASE_PATH": str(tmp_path)})


def test_text_is_sniffed_off_the_event_loop_a_zip_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text walks libmagic's whole database: sniffed in a worker thread; a
    signature at offset 0 is found at once: sniffed on the loop; a PNG's
    prefix settles its type without libmagic."""
    threads: list[int] = []

    def recording(head: bytes) -> str:
        threads.append(threading.get_ident())
        return sniff(head)

    monkeypatch.setattr(sniffing, "sniff", recording)

    zip_sample = next(sample for sample in CORPUS if sample.name == "zip")
    png_sample = next(sample for sample in CORPUS if sample.name == "png")

    async def main() -> tuple[int, list[str]]:
        heads = (TEXT, zip_sample.data, png_sample.data)
        return threading.get_ident(), [await sniff_type(head) for head in heads]

    loop_thread, answers = asyncio.run(main())
    assert answers == ["text/plain", "application/zip", "image/png"]
    assert len(threads) == 2  # the PNG asked libmagic nothing
    assert threads[0] != loop_thread
    assert threads[1] == loop_thread


@pytest.mark.parametrize("prefix", [prefix for prefix, _ in sniffing.SETTLED_PREFIXES])
def test_a_settled_prefix_names_what_libmagic_names(prefix: bytes) -> None:
    """Whatever follows a settled prefix (real headers, random bytes, nothing),
    libmagic names the type the prefix settles; a PNG signature without its
    IHDR chunk is no PNG to libmagic, and so settles nothing."""
    tails = [random.Random(seed).randbytes(SNIFF_WINDOW) for seed in range(50)]
    tails += [b"", b"\x00" * SNIFF_WINDOW]
    tails += [sample.data[len(prefix) :] for sample in CORPUS if sample.data.startswith(prefix)]
    for tail in tails:
        head = prefix + tail
        assert sniffing.settled_type(head) == sniff(head), head[:32]
    assert sniffing.settled_type(b"\x89PNG\r\n\x1a\n" + bytes(8)) is None
    assert sniff(b"\x89PNG\r\n\x1a\n" + bytes(8)) != "image/png"
