"""Memory does not grow with the number of streams ever published: 30 publish cycles with the shipped polyp model.

Each published stream used to open its own onnxruntime session (graph, weights, arenas) and leave about 18 MB behind
when it ended; the shipped models now share one session per model name.
"""

from __future__ import annotations

import asyncio
import statistics

import pytest

from scopecast.app import create_app
from scopecast.settings import Settings
from stream.testing import client
from stream.testing.framestamp import StampedVideoTrack
from tests.helpers.fakes import keyword_vlm
from tests.helpers.servers import running_server
from tests.helpers.stream_access import CLINICIAN_TOKEN, fixed_token_access

CYCLES = 30
WINDOW = 10  # RSS jumps by tens of MB as codec buffers come and go: compare medians of windows of cycles
MAX_GROWTH_PER_CYCLE_MB = 1.0  # the leak this guards against was about 18 MB a cycle


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.mark.timeout(300)
async def test_thirty_publish_cycles_leave_no_memory_behind():
    app = create_app(Settings(serve_sample=False, model="polyp"), vlm=keyword_vlm(), stream_access=fixed_token_access())
    readings: list[float] = []
    async with running_server(app) as addr:
        for _ in range(CYCLES):
            session = await client.publish(f"ws://{addr}/ws", StampedVideoTrack(320, 240, 30), token=CLINICIAN_TOKEN)
            await session.next_event("findings", timeout=30)  # the model really ran on this stream
            await asyncio.sleep(0.2)
            await session.close()
            for _ in range(100):
                if not app.state.hub.all_streams():
                    break
                await asyncio.sleep(0.05)
            assert not app.state.hub.all_streams()
            # no gc.collect() here: a server does not force one either
            readings.append(rss_mb())
    # The first window warms allocator pools and codec buffers up; the growth that matters is between the next two.
    middle = statistics.median(readings[WINDOW : 2 * WINDOW])
    last = statistics.median(readings[2 * WINDOW : 3 * WINDOW])
    per_cycle = (last - middle) / WINDOW
    print(
        f"\npublish cycles: RSS {readings[0]:.0f} MB after the first; median {middle:.0f} MB over cycles "
        f"{WINDOW + 1}-{2 * WINDOW}, {last:.0f} MB over {2 * WINDOW + 1}-{3 * WINDOW}: {per_cycle:+.2f} MB per cycle; "
        f"all: {[round(r) for r in readings]}"
    )
    assert per_cycle < MAX_GROWTH_PER_CYCLE_MB, readings
