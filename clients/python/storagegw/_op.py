"""One public operation, written once, for both clients.

An operation is a flow builder with the public method's exact signature and
docstring (see _operations.py and _transfers.py). Named in a client's class
body (or, once for both clients, in _methods.Methods'),

    class Client(ClientBase):
        head = operations.head

it becomes that client's method: Client.head blocks on the flow and returns
its result, AsyncClient.head is an `async def` that awaits it. Each client
says how it runs a flow with its `_run` method; everything else (the
parameters, their defaults, the doc, the requests built) is the builder's.
Op is the common kind; Listing yields items page by page, SourceOp takes a
source whose type differs between the clients, and Opener returns the
client's reader.

Each client gets a real function, made once when its class is created, so
inspect.signature, help(), __doc__, __name__, __qualname__ and __wrapped__
read as for a method written out in that class; a bound method is a plain
types.MethodType of it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from enum import Enum
from types import MethodType
from typing import (
    Any,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
    overload,
)

from storagegw._base import ClientBase
from storagegw._common import AsyncPutSource, PutSource
from storagegw._effects import Flow, OpenRead

__all__ = [
    "AsyncRunner",
    "Batches",
    "Listing",
    "Op",
    "Opener",
    "Opens",
    "Operation",
    "SourceOp",
    "SyncRunner",
    "listing",
    "opener",
    "operation",
    "source_operation",
]

P = ParamSpec("P")
R = TypeVar("R")
_T = TypeVar("_T")

T = TypeVar("T")
Builder = Callable[Concatenate[ClientBase, P], Flow[R]]
# A listing's flows, one per page, each giving that page's items in order.
Batches: TypeAlias = Iterator[Flow[Iterable[T]]]
BatchesBuilder = Callable[Concatenate[ClientBase, P], Batches[T]]
SourceBuilder = Callable[Concatenate[ClientBase, str, AsyncPutSource, P], Flow[R]]
RequestBuilder = Callable[Concatenate[ClientBase, P], OpenRead]
_Reader = TypeVar("_Reader")
_Reader_co = TypeVar("_Reader_co", covariant=True)


class Opens(Protocol[_Reader_co]):
    """A client that makes its reader for a Get (an OpenRead)."""

    def _open(self, read: OpenRead, /) -> _Reader_co: ...


class SyncRunner(Protocol):
    """A client that runs a flow by blocking until its result."""

    def _run(self, flow: Flow[_T], /) -> _T: ...


class AsyncRunner(Protocol):
    """A client whose `_run` is a coroutine."""

    def _run(self, flow: Flow[_T], /) -> Coroutine[Any, Any, _T]: ...


class _Same(Enum):
    DOC = "the sync client's doc"


SAME_DOC: Final = _Same.DOC


class Operation:
    """What Op and Listing share: the builder, and one function per client
    class that names it, made by `_method` (sync or async)."""

    def __init__(self, build: Callable[..., Any], async_doc: str | _Same | None) -> None:
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__
        self.__wrapped__ = build
        self._build = build
        self._async_doc = build.__doc__ if async_doc is SAME_DOC else async_doc
        self._methods: dict[type, Callable[..., Any]] = {}

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self._build.__name__:
            raise TypeError(
                f"{owner.__qualname__}.{name} names the operation {self._build.__name__}"
            )
        run = getattr(owner, "_run", None)
        if run is None:
            return  # a class that names operations for its clients (_methods.Methods)
        is_async = inspect.iscoroutinefunction(run)
        method = self._method(is_async)
        functools.update_wrapper(method, self._build)
        method.__module__ = owner.__module__
        method.__qualname__ = f"{owner.__qualname__}.{name}"
        method.__doc__ = _in_class_body(self._async_doc if is_async else self._build.__doc__)
        # The method returns what the flows do (`-> Flow[X]` reads `-> X`),
        # and its `self` is the client's, unannotated as a method's is.
        signature = inspect.signature(self._build)
        result = self._returns(signature.return_annotation, owner, is_async)
        own = self._own_annotations(is_async)
        me, *parameters = signature.parameters.values()
        parameters = [p.replace(annotation=own.get(p.name, p.annotation)) for p in parameters]
        annotations = {k: v for k, v in self._build.__annotations__.items() if k != me.name}
        method.__annotations__ = {**annotations, **own, "return": result}
        signature = signature.replace(
            parameters=[me.replace(annotation=me.empty), *parameters], return_annotation=result
        )
        setattr(method, "__signature__", signature)  # noqa: B010
        self._methods[owner] = method

    def _method(self, is_async: bool) -> Callable[..., Any]:
        raise NotImplementedError

    def _returns(self, annotation: object, owner: type, is_async: bool) -> str:
        raise NotImplementedError

    def _own_annotations(self, is_async: bool) -> dict[str, str]:
        """The parameters annotated otherwise in this client's method than in
        the builder (SourceOp's `source`)."""
        return {}

    def _bound(self, obj: object, owner: type | None) -> Callable[..., Any]:
        cls = type(obj) if owner is None else owner
        for home in cls.__mro__:
            method = self._methods.get(home)
            if method is not None:
                return method if obj is None else MethodType(method, obj)
        raise AttributeError(f"{cls.__qualname__} does not name {self._build.__name__}")


class _Performed(Operation):
    """What Op and SourceOp share: the client's method runs the builder's
    flow by the class's `_run`, blocking or awaited."""

    def _method(self, is_async: bool) -> Callable[..., Any]:
        build = self._build
        if is_async:

            async def perform(client: Any, /, *args: Any, **kwargs: Any) -> Any:
                return await client._run(build(client, *args, **kwargs))

            return perform

        def run(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            return client._run(build(client, *args, **kwargs))

        return run

    def _returns(self, annotation: object, owner: type, is_async: bool) -> str:
        return _inside("Flow", annotation)


class Op(_Performed, Generic[P, R]):
    """A descriptor: the operation `build` as the method of each client class
    that names it, blocking or a coroutine after the class's `_run`."""

    def __init__(self, build: Builder[P, R], async_doc: str | _Same | None) -> None:
        super().__init__(build, async_doc)

    @overload
    def __get__(
        self, obj: None, owner: type[SyncRunner]
    ) -> Callable[Concatenate[SyncRunner, P], R]: ...
    @overload
    def __get__(
        self, obj: None, owner: type[AsyncRunner]
    ) -> Callable[Concatenate[AsyncRunner, P], Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type | None = None) -> Callable[P, R]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Callable[..., Any]:
        return self._bound(obj, owner)


class SourceOp(_Performed, Generic[P, R]):
    """An Op whose second parameter, `source`, is what the client reads from:
    AsyncPutSource (the builder's annotation) for AsyncClient, PutSource,
    without async iterables, for Client. The other parameters are P.

    To type checkers the first two parameters are positional-only (a
    ParamSpec cannot change one parameter's type); at run time, and for
    help(), they are ordinary parameters, as in the builder."""

    def __init__(self, build: SourceBuilder[P, R], async_doc: str | _Same | None) -> None:
        super().__init__(build, async_doc)
        source = inspect.signature(build).parameters.get("source")
        if source is None or source.annotation != "AsyncPutSource":
            raise TypeError(f"{build.__name__} takes no `source: AsyncPutSource`")

    @overload
    def __get__(
        self, obj: None, owner: type[SyncRunner]
    ) -> Callable[Concatenate[SyncRunner, str, PutSource, P], R]: ...
    @overload
    def __get__(
        self, obj: None, owner: type[AsyncRunner]
    ) -> Callable[Concatenate[AsyncRunner, str, AsyncPutSource, P], Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(
        self, obj: SyncRunner, owner: type | None = None
    ) -> Callable[Concatenate[str, PutSource, P], R]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type | None = None
    ) -> Callable[Concatenate[str, AsyncPutSource, P], Coroutine[Any, Any, R]]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Callable[..., Any]:
        return self._bound(obj, owner)

    def _own_annotations(self, is_async: bool) -> dict[str, str]:
        return {} if is_async else {"source": "PutSource"}


class Opener(Operation, Generic[P]):
    """A descriptor for `open`: its builder makes the Get (an OpenRead), and each
    client's method returns that client's reader for it, from `_open` (not
    awaited: AsyncClient's reader sends the request when awaited or entered)."""

    def __init__(self, build: RequestBuilder[P], async_doc: str | _Same | None) -> None:
        super().__init__(build, async_doc)

    @overload
    def __get__(
        self, obj: None, owner: type[Opens[_Reader]]
    ) -> Callable[Concatenate[Opens[_Reader], P], _Reader]: ...
    @overload
    def __get__(self, obj: Opens[_Reader], owner: type | None = None) -> Callable[P, _Reader]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Callable[..., Any]:
        return self._bound(obj, owner)

    def _method(self, is_async: bool) -> Callable[..., Any]:
        build = self._build

        def open_reader(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            return client._open(build(client, *args, **kwargs))

        return open_reader

    def _returns(self, annotation: object, owner: type, is_async: bool) -> str:
        reader: str = owner._open.__annotations__["return"]  # type: ignore[attr-defined]
        return reader


class Listing(Operation, Generic[P, T]):
    """A descriptor like Op for a listing: its builder makes one flow per
    page, each giving a batch of items; Client's method is a generator of
    the items, AsyncClient's an async generator."""

    def __init__(self, build: BatchesBuilder[P, T]) -> None:
        super().__init__(build, SAME_DOC)

    @overload
    def __get__(
        self, obj: None, owner: type[SyncRunner]
    ) -> Callable[Concatenate[SyncRunner, P], Iterator[T]]: ...
    @overload
    def __get__(
        self, obj: None, owner: type[AsyncRunner]
    ) -> Callable[Concatenate[AsyncRunner, P], AsyncIterator[T]]: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type | None = None) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type | None = None
    ) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: object, owner: type | None = None) -> Callable[..., Any]:
        return self._bound(obj, owner)

    def _method(self, is_async: bool) -> Callable[..., Any]:
        build = self._build
        if is_async:

            async def items(client: Any, /, *args: Any, **kwargs: Any) -> Any:
                for batch in build(client, *args, **kwargs):
                    for item in await client._run(batch):
                        yield item

            return items

        def iterate(client: Any, /, *args: Any, **kwargs: Any) -> Any:
            for batch in build(client, *args, **kwargs):
                yield from client._run(batch)

        return iterate

    def _returns(self, annotation: object, owner: type, is_async: bool) -> str:
        item = _inside("Batches", annotation)
        return f"AsyncIterator[{item}]" if is_async else f"Iterator[{item}]"


def listing(build: BatchesBuilder[P, T]) -> Listing[P, T]:
    """Make a builder of page flows a listing of both clients."""
    return Listing(build)


def source_operation(
    *, async_doc: str | _Same | None = SAME_DOC
) -> Callable[[SourceBuilder[P, R]], SourceOp[P, R]]:
    """Make a flow builder that reads a `source` an operation of both clients."""

    def make(build: SourceBuilder[P, R]) -> SourceOp[P, R]:
        return SourceOp(build, async_doc)

    return make


def opener(*, async_doc: str | _Same | None = SAME_DOC) -> Callable[[RequestBuilder[P]], Opener[P]]:
    """Make a Get (OpenRead) builder the `open` of both clients."""

    def make(build: RequestBuilder[P]) -> Opener[P]:
        return Opener(build, async_doc)

    return make


def operation(*, async_doc: str | _Same | None = SAME_DOC) -> Callable[[Builder[P, R]], Op[P, R]]:
    """Make a flow builder an operation of both clients. `async_doc` is
    AsyncClient's docstring where it is not the same as Client's."""

    def make(build: Builder[P, R]) -> Op[P, R]:
        return Op(build, async_doc)

    return make


def _in_class_body(doc: str | None) -> str | None:
    """The doc indented as a method's in a class body, one level deeper than
    a module function's, so that __doc__ reads as if written there."""
    if doc is None:
        return None
    first, *rest = doc.split("\n")
    return "\n".join([first, *("    " + line if line else line for line in rest)])


def _inside(alias: str, annotation: object) -> str:
    """`X` from a builder's return annotation `Alias[X]` (a string, as
    `from __future__ import annotations` leaves it)."""
    if isinstance(annotation, str) and annotation.startswith(f"{alias}[") and annotation[-1] == "]":
        return annotation[len(alias) + 1 : -1]
    raise TypeError(f"an operation returns {alias}[...], not {annotation!r}")
