"""Structural checks of a client's SDP offer before aiortc sees it, each failure named in words a developer can act on.

aiortc parses leniently and fails later (or answers an offer it cannot honour), with exception texts that mean nothing
to a client; these checks refuse what WebRTC (RFC 8829/8839/8843/8122) says an offer must not be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MEDIA_SECTIONS = 8
MAX_LINE_CHARS = 4096

_LINE = re.compile(r"^([a-z])=(.*)$")
_MEDIA_LINE = re.compile(r"^(audio|video|application) (\d{1,5}) (\S+)((?: \S+)+)$")
_ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]+$")
_MID = re.compile(r"^[A-Za-z0-9_.~+-]{1,32}$")
_FINGERPRINT = re.compile(r"^(sha-1|sha-224|sha-256|sha-384|sha-512) ((?:[0-9A-Fa-f]{2}:)*[0-9A-Fa-f]{2})$")
_DIGEST_BYTES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
_PAYLOAD_ATTRIBUTES = ("rtpmap", "fmtp", "rtcp-fb")


class SdpProblem(ValueError):
    """What is wrong with the offer, in one sentence."""


@dataclass
class _Section:
    kind: str
    index: int
    formats: list[str]
    attributes: list[tuple[str, str]] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.attributes if key == name]

    @property
    def where(self) -> str:
        return f"media section {self.index} (m={self.kind})"


def check_offer(sdp: str) -> None:
    """Raise SdpProblem naming the first thing that makes `sdp` an unusable WebRTC offer."""
    if any(ord(c) < 32 and c not in "\r\n\t" or ord(c) > 126 for c in sdp):
        raise SdpProblem("SDP may contain only printable ASCII text (it has a control or non-ASCII character)")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0] != "v=0":
        raise SdpProblem("SDP must start with the line 'v=0'")
    session: list[tuple[str, str]] = []
    sections: list[_Section] = []
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise SdpProblem(f"SDP line {number} is longer than {MAX_LINE_CHARS} characters")
        match = _LINE.match(line)
        if match is None:
            raise SdpProblem(f"SDP line {number} is not of the form 'x=value'")
        key, value = match.groups()
        if key == "m":
            sections.append(_media_section(value, len(sections) + 1))
            if len(sections) > MAX_MEDIA_SECTIONS:
                raise SdpProblem(f"SDP offer has more than {MAX_MEDIA_SECTIONS} media sections")
        elif key == "a":
            name, _, attr_value = value.partition(":")
            (sections[-1].attributes if sections else session).append((name, attr_value))
    for required in ("o", "s"):
        if not any(line.startswith(f"{required}=") for line in lines):
            raise SdpProblem(f"SDP has no '{required}=' line")
    if not any(s.kind == "video" for s in sections):
        raise SdpProblem("SDP offer has no video media section (m=video)")
    session_values = _Section("session", 0, [], session)
    mids = [_check_section(section, session_values) for section in sections]
    _check_bundle(session_values, mids)


def _media_section(value: str, index: int) -> _Section:
    match = _MEDIA_LINE.match(value)
    if match is None:
        raise SdpProblem(
            f"media section {index}: 'm=' line must be 'm=<audio|video|application> <port> <proto> <formats>'"
        )
    kind, port, _proto, formats = match.groups()
    if not 1 <= int(port) <= 65535:
        raise SdpProblem(
            f"media section {index} (m={kind}): port {port} is not usable in an offer (1-65535; 0 rejects the section)"
        )
    section = _Section(kind, index, formats.split())
    if kind != "application":
        for fmt in section.formats:
            if not fmt.isdigit() or not 0 <= int(fmt) <= 127:
                raise SdpProblem(f"{section.where}: payload type {fmt!r} is not a number from 0 to 127")
    return section


def _check_section(section: _Section, session: _Section) -> str:
    mids = section.values("mid")
    if len(mids) != 1 or not _MID.match(mids[0]):
        raise SdpProblem(f"{section.where}: needs exactly one non-empty a=mid of at most 32 letters, digits or _.~+-")
    ufrag = next(iter(section.values("ice-ufrag") or session.values("ice-ufrag")), None)
    pwd = next(iter(section.values("ice-pwd") or session.values("ice-pwd")), None)
    if ufrag is None or not 4 <= len(ufrag) <= 256 or not _ICE_CHARS.match(ufrag):
        raise SdpProblem(f"{section.where}: a=ice-ufrag missing or invalid (4-256 letters, digits, + or /)")
    if pwd is None or not 22 <= len(pwd) <= 256 or not _ICE_CHARS.match(pwd):
        raise SdpProblem(f"{section.where}: a=ice-pwd missing or invalid (22-256 letters, digits, + or /)")
    fingerprints = section.values("fingerprint") or session.values("fingerprint")
    if not fingerprints:
        raise SdpProblem(f"{section.where}: no a=fingerprint (DTLS certificate fingerprint)")
    for fingerprint in fingerprints:
        match = _FINGERPRINT.match(fingerprint.strip())
        if match is None or len(match.group(2).split(":")) != _DIGEST_BYTES[match.group(1)]:
            raise SdpProblem(
                f"{section.where}: a=fingerprint must be '<sha-256|...> XX:XX:...' with the digest's length"
            )
    for setup in section.values("setup") or session.values("setup"):
        if setup not in ("actpass", "active", "passive"):
            raise SdpProblem(f"{section.where}: a=setup must be actpass, active or passive in an offer")
    if section.kind != "application":
        for name in _PAYLOAD_ATTRIBUTES:
            for value in section.values(name):
                payload = value.split(" ", 1)[0]
                if not (payload in section.formats or (name == "rtcp-fb" and payload == "*")):
                    raise SdpProblem(f"{section.where}: a={name} names payload type {payload!r}, not on its m= line")
    return mids[0]


def _check_bundle(session: _Section, mids: list[str]) -> None:
    if len(set(mids)) != len(mids):
        raise SdpProblem("two media sections share one a=mid")
    for group in session.values("group"):
        words = group.split()
        if not words:
            raise SdpProblem("a=group names no semantics (expected a=group:BUNDLE <mids>)")
        semantics, *members = words
        if semantics != "BUNDLE":
            continue
        if not members:
            raise SdpProblem("a=group:BUNDLE names no media sections")
        unknown = [m for m in members if m not in mids]
        if unknown:
            raise SdpProblem(f"a=group:BUNDLE names mid {unknown[0]!r}, which no media section has")
