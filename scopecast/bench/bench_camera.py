"""The camera of `scopecast bench viewers`, in its own process: it publishes packets encoded in advance
(PreEncodedStampedTrack.save) to a scopecast server, send-only, and keeps their pace whatever the viewers' process
is doing. Fifty viewers in the bench's own event loop would otherwise delay the camera's packets and the server
would be measured on a late, uneven source.

Arguments come from the environment: BENCH_CAMERA_URL (ws://host:port/ws), BENCH_CAMERA_TOKEN, BENCH_CAMERA_PACKETS
(the saved packets), BENCH_CAMERA_LOG (where the send log goes on exit). It prints one JSON line,
{"stream_id": ...}, once published, and on SIGTERM writes [[stamp, monotonic send time], ...] to the log. Monotonic
time is one clock for every process of a Linux machine, so the viewers' process can compare its arrivals with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from stream.testing import client
from stream.testing.framestamp import PreEncodedStampedTrack


async def _publish_until_stopped() -> None:
    camera = PreEncodedStampedTrack.load(Path(os.environ["BENCH_CAMERA_PACKETS"]))
    session = await client.publish(
        os.environ["BENCH_CAMERA_URL"],
        camera,
        token=os.environ["BENCH_CAMERA_TOKEN"],
        codec="VP8",
        label="bench",
        receive_video=False,  # the camera's own annotated copy would be one more encode on the server
    )
    print(json.dumps({"stream_id": session.stream_id}), flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    try:
        await stopped.wait()
    finally:
        Path(os.environ["BENCH_CAMERA_LOG"]).write_text(json.dumps(camera.send_log))
        await session.close()


def main() -> None:
    asyncio.run(_publish_until_stopped())


if __name__ == "__main__":
    main()
