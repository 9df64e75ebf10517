"""The public surface of Client and AsyncClient: the same methods, with the
same signatures where they should agree, and methods that read as methods
(signature, doc, name, help) though the shared ones are written once, in
storagegw._operations."""

from __future__ import annotations

import inspect
import pydoc
import typing
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from storagegw import AsyncClient, AsyncObjectReader, Client, ObjectReader, _operations
from storagegw.aio import AsyncPutSource
from storagegw.client import PutSource

SHARED = sorted(_operations.__all__)
# Where the two clients' signatures differ, and how.
SOURCE_TAKERS = ("put_file", "resume_upload")  # AsyncClient also takes async iterables
LISTINGS = ("list", "list_pages")  # iterators: Iterator[X] / AsyncIterator[X]
# AsyncClient's docs that refer to Client's rather than repeat them.
ASYNC_DOC_REFERS = ("copy", "download_file", "start_upload")
UNDOCUMENTED_ON_ASYNC = ("abort_upload", "query_upload")


def _public(cls: type) -> dict[str, Any]:
    return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}


def _signatures(name: str) -> tuple[inspect.Signature, inspect.Signature]:
    return inspect.signature(getattr(Client, name)), inspect.signature(getattr(AsyncClient, name))


def _without_return(signature: inspect.Signature) -> inspect.Signature:
    return signature.replace(return_annotation=inspect.Signature.empty)


def test_both_clients_have_the_same_public_names() -> None:
    assert _public(Client).keys() == _public(AsyncClient).keys()


def test_every_shared_operation_is_a_method_of_both() -> None:
    methods = {n for n, a in _public(Client).items() if callable(a)}
    assert set(SHARED) <= methods
    assert {"open", "put_file", "resume_upload"} <= methods - set(SHARED)


@pytest.mark.parametrize("name", SHARED)
def test_shared_operations_have_one_signature(name: str) -> None:
    sync, aio = (
        inspect.signature(getattr(Client, name)),
        inspect.signature(getattr(AsyncClient, name)),
    )
    if name in LISTINGS:
        assert (
            sync.return_annotation == f"Iterator[{aio.return_annotation[len('AsyncIterator[') :]}"
        )
        sync, aio = _without_return(sync), _without_return(aio)
    assert sync == aio
    assert next(iter(sync.parameters)) == "self"
    assert sync.parameters["self"].annotation is inspect.Parameter.empty


@pytest.mark.parametrize("name", ["open", *SOURCE_TAKERS])
def test_explicit_methods_differ_only_where_they_must(name: str) -> None:
    sync, aio = (
        inspect.signature(getattr(Client, name)),
        inspect.signature(getattr(AsyncClient, name)),
    )
    assert list(sync.parameters) == list(aio.parameters)
    differing = [p for p in sync.parameters if sync.parameters[p] != aio.parameters[p]]
    if name == "open":
        assert differing == []
        assert (sync.return_annotation, aio.return_annotation) == (
            "ObjectReader",
            "AsyncObjectReader",
        )
    else:
        assert differing == ["source"]
        assert sync.return_annotation == aio.return_annotation


@pytest.mark.parametrize("name", SHARED)
def test_shared_operations_have_their_docs(name: str) -> None:
    sync, aio = getattr(Client, name).__doc__, getattr(AsyncClient, name).__doc__
    written = _operations.__dict__[name].__doc__
    if written is None:
        assert sync is None
    else:
        assert inspect.cleandoc(sync) == inspect.cleandoc(written)
    if name in ASYNC_DOC_REFERS:
        assert f"Client.{name}" in aio
    elif name in UNDOCUMENTED_ON_ASYNC:
        assert aio is None
    else:
        assert aio == sync


def test_async_methods_are_coroutine_functions() -> None:
    for name, attribute in _public(AsyncClient).items():
        if not callable(attribute) or inspect.isclass(attribute):
            continue
        if name in LISTINGS:
            assert inspect.isasyncgenfunction(attribute), name
        elif name == "open":  # returns a reader, awaited or entered
            assert not inspect.iscoroutinefunction(attribute)
        else:
            assert inspect.iscoroutinefunction(attribute), name


def test_sync_methods_are_plain_functions() -> None:
    for name, attribute in _public(Client).items():
        if callable(attribute) and not inspect.isclass(attribute):
            assert not inspect.iscoroutinefunction(attribute), name
            assert inspect.isgeneratorfunction(attribute) == (name in LISTINGS), name


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("name", SHARED)
def test_shared_operations_read_as_the_class_s_methods(cls: type, name: str) -> None:
    function = getattr(cls, name)
    assert function.__name__ == name
    assert function.__qualname__ == f"{cls.__name__}.{name}"
    assert function.__module__ == cls.__module__
    assert function.__wrapped__ is _operations.__dict__[name].__wrapped__
    assert getattr(cls, name) is function  # one function per class, not one per access


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_bound_operations_are_bound_methods(cls: type) -> None:
    client = cls.__new__(cls)  # no channel needed to look at its methods
    bound = client.head
    assert bound.__self__ is client
    assert bound.__func__ is cls.head
    assert bound == client.head
    assert (bound.__name__, bound.__qualname__, bound.__doc__) == (
        "head",
        f"{cls.__name__}.head",
        cls.head.__doc__,
    )
    assert bound.__wrapped__ is cls.head.__wrapped__
    expected = inspect.signature(cls.head)
    assert inspect.signature(bound) == expected.replace(
        parameters=list(expected.parameters.values())[1:]
    )
    assert inspect.iscoroutinefunction(bound) == (cls is AsyncClient)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_help_lists_the_operations_as_the_class_s_own(cls: type) -> None:
    shown = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    own = shown.split("inherited from")[0]
    prefix = "async " if cls is AsyncClient else ""
    for name in SHARED:
        if name not in LISTINGS:
            assert f"{prefix}{name}(self, " in own, name
    assert "Store `data` under `key`." in own


@pytest.mark.parametrize("name", SHARED)
def test_shared_operations_type_hints_resolve_and_agree(name: str) -> None:
    sync = typing.get_type_hints(getattr(Client, name))
    aio = typing.get_type_hints(getattr(AsyncClient, name))
    if name in LISTINGS:
        assert typing.get_origin(sync.pop("return")) is Iterator
        assert typing.get_origin(aio.pop("return")) is AsyncIterator
    assert sync == aio


@pytest.mark.parametrize("cls", [Client, AsyncClient])
@pytest.mark.parametrize("name", ["open", *SOURCE_TAKERS])
def test_explicit_methods_read_as_the_class_s_methods(cls: type, name: str) -> None:
    function = getattr(cls, name)
    assert (function.__name__, function.__qualname__) == (name, f"{cls.__name__}.{name}")
    assert function.__module__ == cls.__module__
    assert getattr(cls, name) is function
    own = pydoc.render_doc(cls, renderer=pydoc.plaintext).split("inherited from")[0]
    assert f"{name}(self, " in own
    assert function.__doc__.splitlines()[0] in own
    if cls is AsyncClient and name != "open":
        assert f"Client.{name}" in function.__doc__


def test_explicit_methods_type_hints_name_each_client_s_types() -> None:
    assert typing.get_type_hints(Client.put_file)["source"] == PutSource
    assert typing.get_type_hints(AsyncClient.put_file)["source"] == AsyncPutSource
    assert typing.get_type_hints(Client.resume_upload)["source"] == PutSource
    assert typing.get_type_hints(AsyncClient.resume_upload)["source"] == AsyncPutSource
    assert typing.get_type_hints(Client.open)["return"] is ObjectReader
    assert typing.get_type_hints(AsyncClient.open)["return"] is AsyncObjectReader


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_a_subclass_of_a_client_has_the_client_s_methods(cls: type) -> None:
    subclass = type("Mine", (cls,), {})
    for name in [*SHARED, "open", *SOURCE_TAKERS]:
        assert getattr(subclass, name) is getattr(cls, name), name
