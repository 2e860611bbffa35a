"""`scopecast ...`: the command line. Each subcommand validates its input and says clearly what is wrong."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scopecast", description="Real-time surgical video and telehealth with AI overlays")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the server (monitor, capture, API)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument(
        "--source",
        action="append",
        dest="sources",
        metavar="[ID=]LOCATION",
        help="server-side video: a file, rtsp:// URL or /dev/videoN; repeatable; default: the bundled sample clip",
    )
    serve.add_argument("--model", help="registered model to run on every stream (default polyp)")
    serve.add_argument("--sync-wait-ms", type=int, help="evaluation mode: wait up to N ms for each frame's own findings")
    serve.add_argument("--video-codec", choices=["auto", "VP8", "H264"])
    serve.add_argument("--max-sessions", type=int)
    serve.add_argument("--log-format", choices=["json", "text"])

    bench = sub.add_parser("bench", help="benchmarks that print measured numbers")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    from scopecast.bench_stream import add_arguments as add_stream_bench_arguments

    add_stream_bench_arguments(bench_sub.add_parser("stream", help="glass-to-glass latency of the WebRTC pipeline"))

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench" and args.bench_command == "stream":
        from scopecast.bench_stream import run as run_stream_bench

        return run_stream_bench(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(args: argparse.Namespace) -> int:
    from scopecast.settings import Settings

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "sources": args.sources,
            "model": args.model,
            "sync_wait_ms": args.sync_wait_ms,
            "video_codec": args.video_codec,
            "max_sessions": args.max_sessions,
            "log_format": args.log_format,
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            print(f"scopecast: invalid setting {where}: {err['msg']}", file=sys.stderr)
        return 2

    import uvicorn

    from scopecast.app import create_app, source_specs
    from scopecast.logs import configure_logging
    from stream.sources import SourceError, probe_source

    configure_logging(settings.log_level, settings.log_format)
    # Check every source before binding the port, so a typo is a clear message, not a traceback.
    for stream_id, spec in source_specs(settings):
        try:
            width, height, fps = probe_source(spec)
        except SourceError as exc:
            print(f"scopecast: source {stream_id!r}: {exc}", file=sys.stderr)
            return 2
        print(f"scopecast: stream {stream_id!r}: {spec.location} ({width}x{height} @ {fps:.0f} fps)", file=sys.stderr)
    try:
        app = create_app(settings)
    except Exception as exc:  # model registry problems: say which, do not dump a traceback
        print(f"scopecast: cannot start: {exc}", file=sys.stderr)
        return 2
    print(f"scopecast: monitor at http://{settings.host}:{settings.port}/monitor", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", ws_max_size=1 << 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
