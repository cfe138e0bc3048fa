"""`mvlm serve`: the browser UI (FastAPI + uvicorn), loopback-only unless told otherwise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from mvlm.serve.app import LOOPBACK_HOSTS, ServeConfig, create_app, host_name

    roots = [Path(p) for p in [args.data_root, *args.allow_root]]
    for root in roots:
        if not root.is_dir():
            print(f"mvlm serve: error: {root}: data root is not a folder", file=sys.stderr)
            return 2
    if args.upload_limit_mb <= 0:
        print("mvlm serve: error: --upload-limit-mb must be > 0", file=sys.stderr)
        return 2
    # the Host header must name the server (DNS rebinding): loopback, --host, --allow-host
    hosts = list(LOOPBACK_HOSTS)
    for name in [args.host, *args.allow_host]:
        parsed = host_name(name if ":" not in name or name.startswith("[") else f"[{name}]")
        if parsed is None:
            print(f"mvlm serve: error: {name!r} is not a host name or address", file=sys.stderr)
            return 2
        if parsed not in ("0.0.0.0", "::"):  # wildcard binds are not names a browser sends
            hosts.append(parsed)
    cfg = ServeConfig(data_root=roots[0], extra_roots=roots[1:], upload_limit_mb=args.upload_limit_mb,
                      work_dir=Path(args.work_dir) if args.work_dir else None, allowed_hosts=tuple(hosts))
    app = create_app(cfg)
    if args.host not in LOOPBACK_HOSTS:
        print(f"WARNING: binding {args.host}: the UI has no authentication; anyone who can reach this "
              "port can read videos under the data root", file=sys.stderr)
        if not args.allow_host:
            print("note: only requests whose Host header is a loopback name or "
                  f"{args.host} are answered; add the names clients use with --allow-host", file=sys.stderr)
    print(f"mvlm serve: http://{args.host}:{args.port}/  (data root {roots[0].resolve()}, "
          f"work dir {app.state.session.work_dir})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=2)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="browser UI: load a model and a video, track a sentence live",
                       description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--upload-limit-mb", type=float, default=200.0, help="largest accepted upload")
    p.add_argument("--data-root", default=".", help="server-side video/checkpoint paths must lie under it")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="another folder server-side paths may point into (repeatable)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another Host name clients may use (besides loopback and --host; repeatable)")
    p.add_argument("--work-dir", help="where uploads and samples go (default: a new temp folder, "
                   "removed at shutdown)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=_run)
