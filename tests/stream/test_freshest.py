import asyncio

import pytest

from stream.freshest import FreshestFrame, SlotClosed


async def test_newest_item_wins_and_skips_are_counted():
    slot: FreshestFrame[str] = FreshestFrame()
    for item in ("a", "b", "c"):
        slot.put(item)
    taken = await slot.next_after(0)
    assert (taken.seq, taken.item, taken.skipped) == (3, "c", 2)


async def test_consumers_are_independent():
    slot: FreshestFrame[int] = FreshestFrame()
    slot.put(1)
    fast = await slot.next_after(0)
    slot.put(2)
    slot.put(3)
    slow = await slot.next_after(0)
    fast2 = await slot.next_after(fast.seq)
    assert slow.item == 3 and slow.skipped == 2
    assert fast2.item == 3 and fast2.skipped == 1


async def test_waiter_wakes_on_put_and_never_returns_an_old_item():
    slot: FreshestFrame[int] = FreshestFrame()
    slot.put(10)
    waiter = asyncio.create_task(slot.next_after(1))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    slot.put(11)
    taken = await asyncio.wait_for(waiter, 1)
    assert taken.item == 11 and taken.seq == 2 and taken.skipped == 0


async def test_close_wakes_waiters_and_refuses_puts():
    slot: FreshestFrame[int] = FreshestFrame()
    waiter = asyncio.create_task(slot.next_after(0))
    await asyncio.sleep(0.01)
    slot.close()
    with pytest.raises(SlotClosed):
        await asyncio.wait_for(waiter, 1)
    with pytest.raises(SlotClosed):
        slot.put(1)


async def test_memory_stays_bounded_under_a_flood():
    slot: FreshestFrame[bytes] = FreshestFrame()
    for i in range(10_000):
        slot.put(bytes(10))
    taken = await slot.next_after(0)
    assert taken.seq == 10_000 and taken.skipped == 9_999
