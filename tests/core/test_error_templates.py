"""Each kind of GatewayError is an ErrorTemplate, declared once: its reason, its
message and its ErrorInfo metadata are filled from one set of named fields.

mypy cannot check those names (a template takes **fields), so a call with other
fields is a TypeError, and every call in gateway/ is checked here, statically.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import gateway
from gateway.core.stream_limits import RETRY_AFTER_S, put_idle, too_many_streams
from gateway.domain.errors import (
    ErrorTemplate,
    GatewayError,
    Reason,
    backend_unavailable,
    checksum_mismatch,
    key_conflict,
    not_modified,
    object_not_found,
)
from gateway.domain.media_types import MAX_CONTENT_TYPE_BYTES, validate_content_type
from tests.conftest import REPO


def test_a_template_fills_message_and_metadata_from_the_same_fields() -> None:
    error = object_not_found(key="photos/cat.jpg")
    assert error.reason is Reason.OBJECT_NOT_FOUND
    assert error.message == str(error) == "object 'photos/cat.jpg' not found"
    assert error.metadata == {"key": "photos/cat.jpg"}

    mismatch = checksum_mismatch(checksum="object crc32c", expected="0000abcd", actual="ffff0000")
    assert mismatch.message == (
        "object crc32c mismatch: expected 0000abcd, computed ffff0000; nothing was stored"
    )
    assert mismatch.metadata == {
        "checksum": "object crc32c",
        "expected": "0000abcd",
        "actual": "ffff0000",
    }


def test_metadata_may_leave_a_field_to_the_message_or_carry_one_of_its_own() -> None:
    conflict = key_conflict(key="a/b", detail="'a' is an object")
    assert conflict.message == "key 'a/b' conflicts: 'a' is an object"
    assert conflict.metadata == {"key": "a/b"}  # the detail is in the message only

    unavailable = backend_unavailable(backend="s3", detail="S3 GetObject failed: SlowDown")
    assert unavailable.metadata == {"backend": "s3"}

    long_type = "text/" + "x" * 300
    with pytest.raises(GatewayError) as raised:
        validate_content_type(long_type)
    shown = long_type[:77] + "..."
    assert raised.value.reason is Reason.INVALID_CONTENT_TYPE
    assert raised.value.message == (
        f"invalid content_type {shown!r}: 305 bytes long; at most 256 are allowed"
    )
    assert raised.value.metadata == {
        "content_type": shown,
        "max_bytes": str(MAX_CONTENT_TYPE_BYTES),  # in ErrorInfo only
    }


def test_fixed_fields_are_supplied_by_the_template() -> None:
    modified = not_modified(key="a")
    assert modified.message == "object 'a' matches if_none_match: not modified"
    assert modified.metadata == {"key": "a", "condition": "if_none_match"}

    refused = too_many_streams(limit=8)
    assert refused.message == (
        "the gateway is serving its limit of 8 Put and Get streams "
        f"(GATEWAY_MAX_STREAMS); retry in {RETRY_AFTER_S} s"
    )
    assert refused.metadata == {"limit": "8", "retry_after_s": str(RETRY_AFTER_S)}
    with pytest.raises(TypeError, match=r"unexpected \['retry_after_s'\]"):
        too_many_streams(limit=8, retry_after_s=5)


def test_metadata_carries_a_value_as_the_message_writes_it() -> None:
    error = put_idle(idle_timeout_s=5.0)
    assert error.message.startswith("no message from the client for 5 s ")
    assert error.metadata == {"idle_timeout_s": "5"}  # not "5.0"


@pytest.mark.parametrize(
    ("fields", "missing", "unexpected"),
    [
        ({}, "['key']", "[]"),
        ({"name": "a"}, "['key']", "['name']"),
        ({"key": "a", "detail": "x"}, "[]", "['detail']"),
    ],
)
def test_a_call_with_other_fields_is_a_type_error_that_names_them(
    fields: dict[str, object], missing: str, unexpected: str
) -> None:
    with pytest.raises(TypeError) as raised:
        object_not_found(**fields)
    assert str(raised.value) == (
        "the OBJECT_NOT_FOUND error 'object {key!r} not found' takes the fields ['key']: "
        f"missing {missing}, unexpected {unexpected}"
    )


def test_a_positional_value_is_refused() -> None:
    with pytest.raises(TypeError):
        object_not_found("a")


@pytest.mark.parametrize(
    ("message", "options", "complaint"),
    [
        ("offset {} is past the end", {}, "is not a field name"),
        ("object {meta.key!r} not found", {}, "is not a field name"),
        ("{size:d} bytes, of which {size:x}", {}, "two format specs"),
        ("object {key!r} not found", {"fixed": {"bucket": "b"}}, "are not used"),
    ],
)
def test_a_template_that_cannot_be_filled_is_refused_when_declared(
    message: str, options: dict[str, dict[str, object]], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        ErrorTemplate(Reason.INTERNAL, message, **options)


# ----------------------------------------------------- every call in gateway/


def _gateway_modules() -> Iterator[ModuleType]:
    for info in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if info.name != "gateway.__main__":
            yield importlib.import_module(info.name)


def _template_called(node: ast.Call, module: ModuleType) -> ErrorTemplate | None:
    """The template a call calls, by a name the module binds (its own or
    imported) or as an attribute of a module it imports."""
    func = node.func
    if isinstance(func, ast.Name):
        value = vars(module).get(func.id)
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        value = getattr(vars(module).get(func.value.id), func.attr, None)
    else:
        return None
    return value if isinstance(value, ErrorTemplate) else None


def test_every_call_in_the_gateway_passes_exactly_the_templates_fields() -> None:
    wrong: list[str] = []
    called: set[int] = set()
    declared: dict[int, str] = {}
    for module in _gateway_modules():
        for name, value in vars(module).items():
            if isinstance(value, ErrorTemplate):
                declared[id(value)] = name
        assert module.__file__ is not None
        path = Path(module.__file__)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            template = _template_called(node, module)
            if template is None:
                continue
            called.add(id(template))
            passed = [keyword.arg for keyword in node.keywords]
            if node.args or None in passed or set(passed) != template.fields:
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                wrong.append(f"{where}: passes {passed}, takes {sorted(template.fields)}")
    assert wrong == []
    # The scan works: it finds templates declared in several layers, and a call
    # of each (a template no code calls would be dead).
    assert {"object_not_found", "object_too_small", "_name_too_long", "put_idle"} <= set(
        declared.values()
    )
    assert sorted(declared[i] for i in declared.keys() - called) == []
