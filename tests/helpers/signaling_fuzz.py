"""Hostile signaling messages, from a seeded generator: random bytes, deep nesting, huge strings, wrong field types,
and real aiortc offers broken in the ways a tester found (empty mid, port 0, negative payload types, broken BUNDLE,
NUL bytes, no fingerprint) or mutated at random."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from stream.testing.framestamp import StampedVideoTrack


async def aiortc_offer() -> str:
    """A real offer, as the Python client makes it: one sendrecv camera and the events data channel."""
    pc = RTCPeerConnection()
    pc.createDataChannel("events")
    pc.addTransceiver(StampedVideoTrack(320, 240, 10), direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def all_released(app, timeout_s: float = 10.0) -> bool:  # app: FastAPI from scopecast.app.create_app
    """Wait until the server holds no session slot and no stream; False if it still does after `timeout_s`."""
    hub = app.state.hub
    for _ in range(int(timeout_s / 0.05)):
        if hub.session_count == 0 and not hub.all_streams():
            return True
        await asyncio.sleep(0.05)
    return False


@dataclass(frozen=True)
class FuzzMessage:
    kind: str
    payload: str | bytes
    must_fail: bool  # False: a random mutation that may still be a usable offer (an answer is then right too)


def targeted_breakages(offer: str) -> dict[str, tuple[str, str]]:
    """name -> (broken offer, words the error must contain)."""
    lines = offer.split("\r\n")

    def without(prefix: str) -> str:
        return "\r\n".join(line for line in lines if not line.startswith(prefix))

    def replace_first(prefix: str, new: str) -> str:
        out, done = [], False
        for line in lines:
            if not done and line.startswith(prefix):
                out.append(new)
                done = True
            else:
                out.append(line)
        return "\r\n".join(out)

    video = next(line for line in lines if line.startswith("m=video"))
    parts = video.split(" ")
    return {
        "empty mid": (offer.replace("a=mid:0", "a=mid:"), "a=mid"),
        "no fingerprint": (without("a=fingerprint"), "fingerprint"),
        "port 0": (replace_first("m=video", " ".join([parts[0], "0", *parts[2:]])), "port 0"),
        "negative payload type": (
            replace_first("m=video", " ".join([*parts[:3], "-5", *parts[4:]])),
            "payload type '-5'",
        ),
        "payload type 300": (replace_first("m=video", " ".join([*parts[:3], "300", *parts[4:]])), "payload type '300'"),
        "broken BUNDLE": (replace_first("a=group:BUNDLE", "a=group:BUNDLE 0 7"), "'7'"),
        "NUL byte": (offer.replace("s=-", "s=-\x00"), "control"),
        "no ice-pwd": (without("a=ice-pwd"), "ice-pwd"),
        "short ice-ufrag": (offer.replace(_value(lines, "a=ice-ufrag:"), "ab"), "ice-ufrag"),
        "rtpmap for an absent payload": (offer.replace("a=rtpmap:97 VP8", "a=rtpmap:55 VP8"), "'55'"),
        "fingerprint of wrong length": (
            offer.replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256 AB:"),
            "fingerprint",
        ),
        "duplicate mid": (offer.replace("a=mid:1", "a=mid:0"), "mid"),
        "no video": (offer.replace("m=video", "m=audio"), "m=video"),
        "garbage line": (offer.replace("s=-", "s=-\r\nnot an sdp line"), "line"),
    }


def _value(lines: list[str], prefix: str) -> str:
    return next(line for line in lines if line.startswith(prefix))[len(prefix) :]


def generate(offer: str, count: int, seed: int = 17) -> list[FuzzMessage]:
    rng = random.Random(seed)
    breakages = list(targeted_breakages(offer).items())
    makers = [
        lambda: FuzzMessage("random bytes", rng.randbytes(rng.randint(1, 3000)), True),
        lambda: FuzzMessage(
            "random text", "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(1, 500))), True
        ),
        lambda: FuzzMessage(
            "deep nesting", rng.choice(["[", '{"a":', '{"type":"publish","sdp":[']) * rng.randint(17, 20_000), True
        ),
        lambda: FuzzMessage(
            "huge string", json.dumps({"type": "publish", "sdp": "v=0" + "x" * rng.randint(60_000, 70_000)}), True
        ),
        lambda: FuzzMessage("wrong field types", json.dumps(_wrong_types(rng)), True),
        lambda: _targeted(rng, breakages),
        lambda: FuzzMessage("random SDP mutation", json.dumps({"type": "publish", "sdp": _mutate(offer, rng)}), False),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def _targeted(rng: random.Random, breakages: list[tuple[str, tuple[str, str]]]) -> FuzzMessage:
    name, (sdp, _words) = rng.choice(breakages)
    message = rng.choice([{"type": "publish", "sdp": sdp}, {"type": "watch", "stream_id": "sample", "sdp": sdp}])
    return FuzzMessage(f"offer: {name}", json.dumps(message), True)


def _wrong_types(rng: random.Random) -> object:
    return rng.choice(
        [
            {"type": "publish", "sdp": rng.randint(-(10**30), 10**30)},
            {"type": "publish", "sdp": {"nested": ["v=0"]}},
            {"type": "watch", "stream_id": None, "sdp": "v=0 ........"},
            {"type": "watch", "stream_id": "x" * 500, "sdp": "v=0 ........"},
            {"type": "auth", "token": ""},
            {"type": "auth", "token": "not-a-token"},
            {"type": "join", "room_id": "../../etc", "credential": "x", "sdp": "v=0"},
            {"type": ["publish"]},
            {"type": None},
            [1, 2, 3],
            "just a string",
            12345,
            {"type": "publish", "sdp": "v=0\r\n" + "a=x\r\n" * 10, "label": "\x00\x01"},
        ]
    )


def _mutate(offer: str, rng: random.Random) -> str:
    lines = offer.split("\r\n")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(lines))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2 and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + chr(rng.randint(32, 126)) + lines[i][j + 1 :]
        elif op == 3:
            lines = lines[: rng.randint(1, len(lines))]
        else:
            lines[i] = lines[i][: rng.randint(0, len(lines[i]))]
        if not lines:
            lines = ["v=0"]
    return "\r\n".join(lines)
