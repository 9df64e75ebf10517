"""A server-streaming call cut short is closed to its end even when its task
is cancelled while the closing runs. That happens to a Get whose client goes
away: its pending write fails, the closing begins, then grpc.aio cancels the
call's task, and the interceptor closes it with wait_to_the_end
(test_put_get.py's cancelled Get shows the whole call; the order of the two
events there is up to the scheduler, so it is forced here)."""

import asyncio

import pytest

from gateway.domain.tasks import wait_to_the_end


async def test_a_cancellation_during_the_closing_waits_for_it_then_is_raised():
    closing_began = asyncio.Event()
    release = asyncio.Event()
    cleaned_up = []

    async def handler():
        try:
            yield b"first"
            yield b"never taken"
        finally:
            closing_began.set()
            await release.wait()  # a file closed on a thread, say
            cleaned_up.append("reader closed")

    responses = handler()
    assert await anext(responses) == b"first"
    closer = asyncio.ensure_future(wait_to_the_end(responses.aclose()))
    await closing_began.wait()
    closer.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert cleaned_up == ["reader closed"]
    assert responses.ag_frame is None
