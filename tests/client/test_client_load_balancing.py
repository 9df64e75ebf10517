"""Client(load_balancing="round_robin") spreads calls over every address of its
target: two memory gateways (each with its own store) both receive objects."""

from __future__ import annotations

from collections.abc import Callable

from storagegw import AsyncClient, Client
from tests.conftest import RunningGateway

KEYS = [f"spread/{n}.txt" for n in range(32)]


def stored_keys(running: RunningGateway) -> set[str]:
    with Client(running.target, timeout=30) as direct:
        return {info.key for info in direct.list(prefix="spread/")}


def two_gateways(factory: Callable[..., RunningGateway]) -> tuple[RunningGateway, RunningGateway]:
    return factory(STORAGE_BACKEND="memory"), factory(STORAGE_BACKEND="memory")


def test_round_robin_spreads_calls_over_both_addresses(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    a, b = two_gateways(gateway_factory)
    target = f"ipv4:{a.target},{b.target}"
    with Client(target, load_balancing="round_robin", timeout=30) as storage:
        for key in KEYS:
            storage.put_bytes(key, key.encode())
    on_a, on_b = stored_keys(a), stored_keys(b)
    assert on_a
    assert on_b
    assert on_a | on_b == set(KEYS)
    assert not on_a & on_b


def test_without_a_policy_one_address_gets_every_call(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    a, b = two_gateways(gateway_factory)
    with Client(f"ipv4:{a.target},{b.target}", timeout=30) as storage:
        for key in KEYS:
            storage.put_bytes(key, key.encode())
    assert sorted([len(stored_keys(a)), len(stored_keys(b))]) == [0, len(KEYS)]


async def test_async_client_takes_the_policy_too(
    gateway_factory: Callable[..., RunningGateway],
) -> None:
    a, b = two_gateways(gateway_factory)
    target = f"ipv4:{a.target},{b.target}"
    async with AsyncClient(target, load_balancing="round_robin", timeout=30) as storage:
        for key in KEYS:
            await storage.put_bytes(key, key.encode())
    assert stored_keys(a)
    assert stored_keys(b)
