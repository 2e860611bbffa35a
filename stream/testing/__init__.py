"""Tooling for tests and benchmarks, not used by the server.

`client` is a Python WebRTC peer (publish, watch, join a room) and `framestamp`
draws frame indices into pixels for glass-to-glass latency; the integration
tests and `scopecast bench` drive a server with them.
"""
