"""Server settings from flags and SCOPECAST_* environment variables, validated at start-up."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from perception.vlm.factory import VlmConfig
from stream.access import normalize_origin

_SOURCE_WITH_ID = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})=(.+)$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCOPECAST_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    sources: list[str] = Field(
        default_factory=list,
        description="server-side video sources as ID=LOCATION or LOCATION (file, rtsp:// URL, /dev/videoN); "
        "empty: the bundled sample clip",
    )
    serve_sample: bool = Field(True, description="serve the bundled sample clip when no source is given")
    model: str = Field("polyp", description="registered model run on every stream; 'none' relays video without AI")
    consult_model: str = Field(
        "wound", description="model run on the patient's video in consult rooms; 'none': plain video"
    )
    model_threads: int = Field(1, ge=1, le=64, description="CPU threads per model session")
    model_batching: bool = Field(
        True,
        description="one worker per model serves every stream of it, running the freshest frame of each waiting "
        "stream as one batch; false: each stream runs its model on a thread of its own",
    )
    model_batch_max: int = Field(8, ge=1, le=64, description="frames (one per stream) in one batched model run at most")
    model_batch_budget_ms: float = Field(
        250.0,
        gt=0,
        le=10_000,
        description="a batch is cut to what the model's measured cost per frame lets finish within this; the streams "
        "left over go first in the next batch",
    )
    max_inference_fps: float = Field(
        0.0,
        ge=0,
        le=240,
        description="run each stream's model at most this often (0: as often as it can); "
        "on small CPUs this leaves room for video encoding",
    )
    register_wait_ms: float = Field(
        40.0,
        ge=0,
        le=200,
        description="an outgoing frame waits up to this long for its own findings when the model's "
        "measured latency says they will come in time; otherwise the newest findings are carried onto it by motion "
        "(0: never wait, always carry)",
    )
    keep_sources_running: bool = Field(
        False,
        description="run the model on server sources even when nobody watches (for recording); "
        "default: paused until the first viewer",
    )
    max_sessions: int = Field(16, ge=1, le=1000)
    max_sessions_per_address: int = Field(
        8,
        ge=1,
        le=1000,
        description="open signaling sockets one client address may hold (one address never holds every slot)",
    )
    offer_timeout_s: float = Field(
        10.0, gt=0, le=300, description="a signaling socket with no answered offer by then is closed"
    )
    max_socket_errors: int = Field(
        20, ge=1, le=10_000, description="refused messages before a signaling socket is closed"
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="page origins (scheme://host[:port]) besides the server's own that may open the signaling socket",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="proxies whose X-Forwarded-For/-Proto are trusted (comma-separated IPs or CIDRs, '*' for any); "
        "empty: none, the peer address is the client",
    )
    body_idle_timeout_s: float = Field(
        15.0, gt=0, le=600, description="longest pause allowed while a request body arrives"
    )
    body_min_bytes_per_s: float = Field(
        4096.0, ge=0, le=10_000_000, description="after the first 20 s, a request body must average at least this rate"
    )
    hang_timeout_s: float = Field(2.0, gt=0, le=60)
    stale_after_s: float = Field(1.0, gt=0, le=60)
    fade_after_s: float = Field(0.3, ge=0, le=60)
    sync_wait_ms: int = Field(
        0, ge=0, le=10_000, description="evaluation mode: wait this long for each frame's own findings"
    )
    max_message_bytes: int = Field(64 * 1024, ge=1024, le=1 << 20)
    video_codec: Literal["auto", "VP8", "H264"] = "auto"
    ice_servers: list[str] = Field(
        default_factory=list,
        description="STUN/TURN servers for peers behind NAT, as URLs: stun:host:3478 or turn:USER:PASSWORD@host:3478",
    )
    turn_urls: list[str] = Field(
        default_factory=list,
        description="TURN servers sharing `turn_secret` (coturn use-auth-secret), e.g. turn:turn.example.org:3478; "
        "pages and the server's own peers get time-limited credentials for them",
    )
    turn_secret: SecretStr | None = Field(None, description="coturn's static-auth-secret")
    turn_ttl_s: int = Field(3600, ge=60, le=86_400, description="lifetime of the TURN credentials handed out")
    ice_transport_policy: Literal["all", "relay"] = Field(
        "all", description="'relay': pages send media through TURN only (strict networks, and the TURN test)"
    )
    janus_url: str | None = Field(
        None,
        description="Janus API WebSocket (ws://127.0.0.1:8188): each stream is published once into a Janus VideoRoom "
        "and /monitor viewers watch through Janus; unset, viewers watch directly from scopecast",
    )
    janus_admin_url: str | None = Field(
        None, description="Janus admin API WebSocket (ws://127.0.0.1:7188); loopback or a private interface only"
    )
    janus_admin_secret: SecretStr | None = Field(None, description="Janus's admin_secret (adds per-viewer tokens)")
    janus_room_admin_key: SecretStr | None = Field(
        None, description="the VideoRoom plugin's admin_key, when its configuration restricts who creates rooms"
    )
    janus_public_url: str | None = Field(
        None, description="the Janus API as browsers reach it (wss://janus.example.org); default: janus_url"
    )
    janus_token_ttl_s: int = Field(600, ge=30, le=86_400, description="lifetime of a viewer's Janus token")
    vlm: VlmConfig = Field(
        default_factory=VlmConfig,
        description="who answers questions: grounded (findings only, default), transformers (local path) or openai (server); "
        "env SCOPECAST_VLM__BACKEND, SCOPECAST_VLM__MODEL_PATH, SCOPECAST_VLM__BASE_URL, SCOPECAST_VLM__MODEL, ...",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("sources")
    @classmethod
    def _sources_not_blank(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.strip():
                raise ValueError("a source may not be empty")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        normalized = []
        for origin in value:
            clean = normalize_origin(origin)
            if clean is None:
                raise ValueError(f"allowed origin {origin!r} must look like https://host or http://host:port")
            normalized.append(clean)
        return normalized

    @field_validator("turn_urls")
    @classmethod
    def _turn_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("turn:", "turns:")) or "@" in url:
                raise ValueError(f"TURN URL {url!r} must look like turn:host:port (credentials come from turn_secret)")
        return value

    @field_validator("ice_servers")
    @classmethod
    def _ice_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parse_ice_server(url)  # raises ValueError naming the bad entry
        return value

    @field_validator("janus_url", "janus_admin_url", "janus_public_url")
    @classmethod
    def _janus_urls(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError(f"Janus URL {value!r} must be a WebSocket URL: ws://host:port or wss://host:port")
        return value

    @model_validator(mode="after")
    def _janus_needs_its_admin_api(self) -> "Settings":
        if self.janus_url and (self.janus_admin_url is None or self.janus_admin_secret is None):
            raise ValueError(
                "janus_url is set but janus_admin_url or janus_admin_secret is not: scopecast adds each viewer's "
                "token through the admin API (Janus runs with token_auth)"
            )
        return self

    @model_validator(mode="after")
    def _turn_needs_its_secret(self) -> "Settings":
        if self.turn_urls and self.turn_secret is None:
            raise ValueError("turn_urls are set but turn_secret is not: give coturn's static-auth-secret")
        return self

    @field_validator("fade_after_s")
    @classmethod
    def _fade_before_stale(cls, value: float, info: ValidationInfo) -> float:
        stale = info.data.get("stale_after_s")
        if stale is not None and value >= stale:
            raise ValueError(f"fade_after_s ({value}) must be less than stale_after_s ({stale})")
        return value


def split_source(item: str, index: int) -> tuple[str, str]:
    """'endo=/data/a.mp4' -> ('endo', '/data/a.mp4'); a bare location gets the id 'sourceN'."""
    match = _SOURCE_WITH_ID.match(item)
    if match:
        return match.group(1), match.group(2)
    return f"source{index}", item


def parse_ice_server(url: str) -> dict[str, str]:
    """'turn:alice:s3cret@turn.example.org:3478' -> {'urls': 'turn:turn.example.org:3478', 'username': ..., 'credential': ...}."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in ("stun", "stuns", "turn", "turns") or not rest:
        raise ValueError(f"ICE server {url!r} must look like stun:host:port or turn:user:password@host:port")
    if "@" not in rest:
        return {"urls": url}
    credentials, host = rest.rsplit("@", 1)
    username, sep, password = credentials.partition(":")
    if not sep or not username or not host:
        raise ValueError(f"ICE server for {scheme}:{host} must give user:password before '@'")
    return {"urls": f"{scheme}:{host}", "username": username, "credential": password}
