"""`scopecast ...`: the command line. Each subcommand validates its input and says clearly what is wrong."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

# Subcommands whose arguments belong to another package's own parser: scopecast
# only routes to them, so each keeps one definition of its options.
_FORWARDED: dict[tuple[str, ...], tuple[str, str]] = {
    ("train",): ("perception.training", "train a segmentation model (progress bar, plots, resumable)"),
    ("export",): ("perception.export", "export a trained checkpoint to ONNX in perception/weights"),
    ("quantize",): ("perception.quantize", "an exported ONNX in 8-bit integers, its content gate refitted"),
    ("eval",): ("perception.evaluate", "Dice/IoU/precision/recall (+AP@0.5) of a model on images and masks"),
    ("bench", "perception"): (
        "perception.bench.runtimes",
        "model latency, throughput and memory per runtime, batch and frame size",
    ),
    ("eval", "vlm"): (
        "perception.vlm.evaluate",
        "accuracy of a VLM backend on closed questions from ground-truth masks",
    ),
    ("eval", "content"): ("perception.content_eval", "how often a model's content gate accepts each kind of content"),
    ("eval", "bias"): ("perception.bias_audit", "a wound model's Dice grouped by periwound skin tone (ITA°)"),
    ("eval", "tracking"): (
        "perception.track_eval",
        "id switches and new ids per object per 10 s on sequences played in order",
    ),
    ("eval", "retrieval"): (
        "perception.retrieval_eval",
        "recall@1, recall@5 and mAP of a model's image embeddings on images grouped by lesion",
    ),
    ("bench", "vlm"): ("perception.bench.vlm", "time to first token and tokens/s of VLM backends"),
}


def _forwarded(argv: Sequence[str]) -> tuple[str, list[str], str] | None:
    for words, (module, _help) in sorted(_FORWARDED.items(), key=lambda kv: -len(kv[0])):
        if tuple(argv[: len(words)]) == words:
            return module, list(argv[len(words) :]), "scopecast " + " ".join(words)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    route = _forwarded(argv)
    if route is not None:
        import importlib

        module, rest, prog = route
        sys.argv[0] = prog
        return int(importlib.import_module(module).main(rest) or 0)

    parser = argparse.ArgumentParser(
        prog="scopecast", description="Real-time surgical video and telehealth with AI overlays"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for words, (_module, help_text) in _FORWARDED.items():
        if len(words) == 1:
            sub.add_parser(words[0], help=help_text, add_help=False)

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
    serve.add_argument(
        "--sync-wait-ms", type=int, help="evaluation mode: wait up to N ms for each frame's own findings"
    )
    serve.add_argument("--video-codec", choices=["auto", "VP8", "H264"])
    serve.add_argument("--max-inference-fps", type=float, help="run the model at most N times a second per stream")
    serve.add_argument(
        "--model-batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one worker per model batches every stream's freshest frame (default on); "
        "--no-model-batching: a model thread per stream",
    )
    serve.add_argument("--model-batch-max", type=int, help="frames (one per stream) in one batched model run at most")
    serve.add_argument("--max-sessions", type=int)
    serve.add_argument("--log-format", choices=["json", "text"])
    serve.add_argument(
        "--vlm-backend",
        choices=["grounded", "transformers", "openai"],
        help="who answers questions (default grounded: from the findings only)",
    )
    serve.add_argument("--vlm-model-path", help="transformers: local image-text-to-text checkpoint folder")
    serve.add_argument("--vlm-base-url", help="openai: OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    serve.add_argument("--vlm-model", help="openai: model name the server expects")
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="trust X-Forwarded-For/-Proto from these proxies only (comma-separated; default: none)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help="another page origin (https://host[:port]) that may open the signaling socket; repeatable",
    )
    serve.add_argument(
        "--ice-server",
        action="append",
        dest="ice_servers",
        metavar="URL",
        help="STUN/TURN server for peers behind NAT: stun:host:3478 or turn:user:pass@host:3478; repeatable",
    )

    user = sub.add_parser("user", help="manage telehealth accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser("add", help="create an account (the first admin or GP, for example)")
    user_add.add_argument("--email", required=True)
    user_add.add_argument("--role", required=True, choices=["admin", "gp", "surgeon", "patient"])
    user_add.add_argument(
        "--name", help="how signed reports name a clinician, e.g. 'Dr Jane Smith' (default: the email)"
    )
    user_add.add_argument(
        "--password-env",
        metavar="VAR",
        help="read the password from this environment variable instead of prompting (for scripts)",
    )

    verify = sub.add_parser(
        "verify-report", help="check a signed report PDF's PAdES signature (exit 0 valid, 1 invalid, with the reason)"
    )
    verify.add_argument("file", metavar="FILE.pdf")
    verify.add_argument(
        "--cert",
        action="append",
        dest="certs",
        metavar="CERT.pem",
        help="trust this certificate (repeatable); default: the clinic's signing certificate from the settings",
    )
    export_dicom = sub.add_parser(
        "export-dicom",
        help="write a case's DICOM instances (photos, captures, overlays, measurements SR) to a folder",
    )
    export_dicom.add_argument("--case", required=True, type=int, metavar="ID", help="the case's id")
    export_dicom.add_argument("--out", required=True, metavar="DIR", help="folder for the .dcm files (made if missing)")

    janus = sub.add_parser(
        "janus-config", help="write a Janus configuration for scopecast: token auth, VideoRoom, APIs on one address"
    )
    janus.add_argument("--out", required=True, metavar="DIR", help="folder for the .jcfg files and scopecast.env")
    janus.add_argument("--listen-ip", default="127.0.0.1", help="address of the Janus API and admin API (loopback)")
    janus.add_argument("--ice-interface", default="lo", help="interface Janus gathers media candidates on")
    janus.add_argument("--ws-port", type=int, default=8188)
    janus.add_argument("--admin-port", type=int, default=7188)

    bench = sub.add_parser("bench", help="benchmarks that print measured numbers")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    bench_sub.add_parser("perception", help=_FORWARDED[("bench", "perception")][1], add_help=False)
    bench_sub.add_parser("vlm", help=_FORWARDED[("bench", "vlm")][1], add_help=False)
    from scopecast.bench.stream import add_arguments as add_stream_bench_arguments

    add_stream_bench_arguments(bench_sub.add_parser("stream", help="glass-to-glass latency of the WebRTC pipeline"))
    from scopecast.bench.streams import add_arguments as add_streams_bench_arguments

    add_streams_bench_arguments(
        bench_sub.add_parser(
            "streams", help="findings/s per stream and model frames/s, with and without cross-stream batching"
        )
    )
    from scopecast.bench.overlay import add_arguments as add_overlay_bench_arguments

    add_overlay_bench_arguments(
        bench_sub.add_parser(
            "overlay", help="does the overlay sit on the frame it is drawn on: IoU of what is drawn vs the frame shown"
        )
    )

    from scopecast.bench.viewers import add_arguments as add_viewers_bench_arguments

    add_viewers_bench_arguments(
        bench_sub.add_parser("viewers", help="cost of each viewer of one stream: direct from scopecast and via Janus")
    )

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "user":
        return _user_add(args)
    if args.command == "verify-report":
        return _verify_report(args)
    if args.command == "export-dicom":
        return _export_dicom(args)
    if args.command == "janus-config":
        return _janus_config(args)
    if args.command == "bench" and args.bench_command == "stream":
        from scopecast.bench.stream import run as run_stream_bench

        return run_stream_bench(args)
    if args.command == "bench" and args.bench_command == "streams":
        from scopecast.bench.streams import run as run_streams_bench

        return run_streams_bench(args)
    if args.command == "bench" and args.bench_command == "viewers":
        from scopecast.bench.viewers import run as run_viewers_bench

        return run_viewers_bench(args)
    if args.command == "bench" and args.bench_command == "overlay":
        from scopecast.bench.overlay import run as run_overlay_bench

        return run_overlay_bench(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line (argparse leaves the others None): they override the environment."""
    return {name: value for name, value in options.items() if value is not None}


def _serve(args: argparse.Namespace) -> int:
    from scopecast.settings import Settings

    overrides = _given(
        {
            "host": args.host,
            "port": args.port,
            "sources": args.sources,
            "model": args.model,
            "sync_wait_ms": args.sync_wait_ms,
            "video_codec": args.video_codec,
            "max_inference_fps": args.max_inference_fps,
            "model_batching": args.model_batching,
            "model_batch_max": args.model_batch_max,
            "max_sessions": args.max_sessions,
            "log_format": args.log_format,
            "ice_servers": args.ice_servers,
            "forwarded_allow_ips": args.forwarded_allow_ips,
            "allowed_origins": args.allowed_origins,
        }
    )
    vlm = _given(
        {
            "backend": args.vlm_backend,
            "model_path": args.vlm_model_path,
            "base_url": args.vlm_base_url,
            "model": args.vlm_model,
        }
    )
    if vlm:
        overrides["vlm"] = vlm
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
        print(f"scopecast: stream {stream_id!r}: {spec.loggable} ({width}x{height} @ {fps:.0f} fps)", file=sys.stderr)
    from perception.vlm.factory import create_vlm
    from scopecast.app import build_telehealth
    from scopecast.telehealth_setup import telehealth_settings

    try:
        telehealth = build_telehealth(telehealth_settings())
        vlm_backend = create_vlm(settings.vlm)
        warm_up = getattr(vlm_backend, "warm_up", None)
        if warm_up is not None:
            # Before any video flows: loading the intent model (torch, transformers) on a thread later takes the
            # interpreter from the streams for seconds (measured: 30 fps fell to 26 at one viewer).
            print("scopecast: loading the question answerer ...", file=sys.stderr)
            warm_up()
        app = create_app(settings, telehealth=telehealth, vlm=vlm_backend)
    except (ValidationError, ValueError, OSError, RuntimeError) as exc:  # say what is wrong, no traceback
        print(f"scopecast: cannot start: {exc}", file=sys.stderr)
        return 2
    from scopecast.server_config import uvicorn_config

    print(f"scopecast: monitor at http://{settings.host}:{settings.port}/monitor (sign in first)", file=sys.stderr)
    setup_link = telehealth.first_run_link()
    if setup_link is not None and setup_link.startswith("/"):  # no public base URL set: the local address
        local = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        setup_link = f"http://{local}:{settings.port}{setup_link}"
    if setup_link is not None:  # a fresh install: the first person creates the admin account in the browser
        print(
            "scopecast: no account exists yet. To create the administrator account, open this one-time link:",
            file=sys.stderr,
        )
        print(f"    {setup_link}", file=sys.stderr)
    try:
        uvicorn.Server(uvicorn_config(app, settings)).run()
    except KeyboardInterrupt:  # Ctrl-C after a clean shutdown: nothing to report (as uvicorn.run does)
        pass
    return 0


def _user_add(args: argparse.Namespace) -> int:
    import getpass
    import os

    from scopecast.app import build_telehealth
    from scopecast.telehealth_setup import telehealth_settings
    from telehealth.accounts import add_user, clean_display_name
    from telehealth.errors import AccountError
    from telehealth.store.accounts import set_display_name

    if args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            print(f"scopecast: environment variable {args.password_env} is empty or unset", file=sys.stderr)
            return 2
    else:
        password = getpass.getpass(f"password for {args.email}: ")
        if password != getpass.getpass("again: "):
            print("scopecast: the passwords differ", file=sys.stderr)
            return 2
    services = build_telehealth(telehealth_settings())
    try:
        user = add_user(services.store, args.email, password, args.role)
        if args.name:
            user = set_display_name(services.store, user.id, clean_display_name(args.name))
    except AccountError as exc:
        print(f"scopecast: {exc}", file=sys.stderr)
        return 2
    finally:
        import asyncio

        asyncio.run(services.close())
    print(f"created {args.role} account #{user.id}")
    return 0


def _verify_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from telehealth.report_signing import verify_report_pdf
    from telehealth.signing_key import SigningKeyError, load_certificate, signing_cert_path

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"scopecast: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.certs:
        cert_paths = [Path(c) for c in args.certs]
    else:
        from scopecast.telehealth_setup import telehealth_settings

        try:
            cert_paths = [signing_cert_path(telehealth_settings())]
        except ValidationError as exc:
            print(f"scopecast: invalid telehealth settings: {exc.errors()[0]['msg']}", file=sys.stderr)
            return 2
    try:
        trusted = [load_certificate(p) for p in cert_paths]
    except SigningKeyError as exc:
        print(f"scopecast: {exc} (nothing signed here yet? give the clinic's certificate with --cert)", file=sys.stderr)
        return 2
    check = verify_report_pdf(data, trusted)
    if not check.valid:
        print(f"{path}: INVALID: {check.reason}")
        return 1
    when = check.signed_at.isoformat() if check.signed_at else "an unrecorded time"
    print(f"{path}: valid: signed by {check.signer_name or 'an unnamed signer'} at {when} with {check.certificate}")
    if check.development_key:
        print("warning: signed with a DEVELOPMENT KEY - NOT FOR CLINICAL USE")
    return 0


def _janus_config(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stream.janus.local_config import scopecast_env, write_config

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"scopecast: --out {out} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        config = write_config(
            out,
            listen_ip=args.listen_ip,
            ice_interface=args.ice_interface,
            ws_port=args.ws_port,
            admin_port=args.admin_port,
            rtp_ports=(20000, 40000),
        )
    except (ValueError, OSError) as exc:
        print(f"scopecast: {exc}", file=sys.stderr)
        return 2
    env = out / "scopecast.env"
    env.touch(mode=0o600)
    env.write_text(scopecast_env(config))
    print(f"wrote {out}/janus*.jcfg; run: janus -F {out} -C {out / 'janus.jcfg'}")
    print(f"scopecast's settings (secrets included, mode 0600): {env}")
    print("the admin API adds tokens for anyone who reaches it: never expose it beyond this machine or network")
    return 0


def _export_dicom(args: argparse.Namespace) -> int:
    """Against the configured telehealth database (SCOPECAST_TELEHEALTH_*), as the operator: audited as an export."""
    import asyncio
    from pathlib import Path

    from scopecast.app import build_telehealth
    from scopecast.telehealth_setup import telehealth_settings
    from telehealth.dicom.export import NothingToExport, export_case
    from telehealth.errors import NotFound

    if args.case < 1:
        print(f"scopecast: --case must be a case id (1 or more), not {args.case}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"scopecast: --out {out} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        services = build_telehealth(telehealth_settings())
    except (ValidationError, ValueError, OSError) as exc:
        print(f"scopecast: cannot open the telehealth store: {exc}", file=sys.stderr)
        return 2
    try:
        done = export_case(services.dicom.builder, args.case, out)
    except (NotFound, NothingToExport) as exc:
        print(f"scopecast: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"scopecast: cannot write to {out}: {exc}", file=sys.stderr)
        return 2
    finally:
        asyncio.run(services.close())
    for skipped in done.skipped:
        print(f"scopecast: photo {skipped.photo_id} left out: {skipped.reason}", file=sys.stderr)
    for f in done.files:
        print(f"{f.path}\t{f.kind.value}\tphoto {f.photo_id}\t{f.sop_instance_uid}")
    print(f"exported {len(done.files)} instances of case {done.case_id} (study {done.study_uid})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
