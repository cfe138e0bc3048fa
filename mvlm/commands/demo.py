"""`mvlm demo`: track a target described in words on a video, a frame folder or a webcam.

A live window shows each frame with the box, κ, the mode and the gate's decision for the next
frame (Space pauses, Esc / q stops) whenever a display exists; `--no-display` for headless runs.
`--select` opens the first frame in a window to drag the target's box.
"""

from __future__ import annotations

import argparse
import sys
import time

from mvlm.commands.track import add_weights_options
from mvlm.demo import (BackgroundServer, DemoError, FrameBroadcaster, PartialRun, has_display, load_tracker,
                       open_source, open_window, parse_box, run_demo, stream_app)


def _window(args: argparse.Namespace):
    """(window or None, whether frames are shown live); `DemoError` when one is required."""
    if args.select and args.init_box:
        raise DemoError("give either --select (draw the box) or --init-box, not both")
    live = has_display() if args.display is None else args.display
    if not (live or args.select):
        return None, False
    try:
        return open_window(args.window), live
    except DemoError as exc:
        if args.select:
            raise DemoError(f"--select needs a window: {exc}") from exc
        if args.display:
            raise
        print(f"note: no live window ({exc}); running headless", file=sys.stderr)
        return None, False


def _run(args: argparse.Namespace) -> int:
    window = None
    try:
        init_box = parse_box(args.init_box)
        source = open_source(video=args.video, frames=args.frames, webcam=args.webcam)
        window, live = _window(args)
        if args.select:
            init_box = window.select_box(source.first_frame())
            print("selection cancelled: template-free, the sentence alone" if init_box is None else
                  f"box from selection: {','.join(str(int(v)) for v in init_box)}", file=sys.stderr)
        loaded = load_tracker(args.checkpoint, preset=args.preset, tracker_preset=args.tracker_preset,
                              compat=args.compat, device=args.device, seed=args.seed,
                              checkpoint_preset=args.checkpoint_preset,
                              mode="bbox" if args.template_mode else args.mode,
                              text_weights=args.text_weights, random_init=args.random_init)
    except (ValueError, OSError) as exc:
        if window is not None:
            window.close()
        print(f"mvlm demo: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _track(args, source, loaded, init_box, window if live else None)
    finally:
        if window is not None:
            window.close()


def _track(args, source, loaded, init_box, window) -> int:
    print(f"model: {loaded.description}", file=sys.stderr)
    if loaded.random_init:
        print("WARNING: no --checkpoint given: using a random-init network; boxes are not meaningful",
              file=sys.stderr)
    print(f"source: {source.name} ({source.frame_count if source.frame_count > 0 else '?'} frames, "
          f"{source.fps:.1f} fps)", file=sys.stderr)

    broadcaster = server = None
    if args.stream_port:
        broadcaster = FrameBroadcaster()
        try:
            server = BackgroundServer(stream_app(broadcaster), args.stream_host, args.stream_port).start()
        except DemoError as exc:
            print(f"mvlm demo: error: {exc}", file=sys.stderr)
            return 2
        print(f"live MJPEG: {server.url}  (stream at {server.url}stream)", file=sys.stderr)

    def progress(res, fps):
        if not args.quiet and (res.index % 25 == 0):
            k = "n/a" if res.kappa is None else f"{res.kappa:+.3f}"
            print(f"frame {res.index}: box {[round(float(v), 1) for v in res.box]} k={k} "
                  f"{res.mode} {fps:.1f} FPS", file=sys.stderr)

    try:
        summary = run_demo(source, loaded.tracker, args.text, init_box, video_out=args.out,
                           results_out=args.results, broadcaster=broadcaster,
                           max_frames=args.max_frames, on_frame=progress, window=window)
    except PartialRun as exc:  # the finished-run files were not touched
        print(f"mvlm demo: error: {exc}", file=sys.stderr)
        return 130 if exc.interrupted else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        print(f"mvlm demo: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if broadcaster:
            broadcaster.close()
    if server:
        if args.stream_wait:
            print("finished; still serving the last frame (Ctrl-C to stop)", file=sys.stderr)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        server.stop()
    if summary.truncated:
        print(f"WARNING: {source.name}: read {summary.frames} frames, but the file reports "
              f"{summary.expected_frames} (truncated or damaged?); results cover the {summary.frames} "
              "frames read", file=sys.stderr)
    modes = ", ".join(f"{k}: {v}" for k, v in sorted(summary.modes.items()))
    print(f"{summary.frames} frames in {summary.seconds:.2f} s ({summary.fps:.1f} FPS overall; "
          f"modes {modes})", file=sys.stderr)
    if summary.video:
        print(f"annotated video: {summary.video}", file=sys.stderr)
    if summary.results:
        print(f"results: {summary.results}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="track a target described in words on your own video",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="video file (decoded with OpenCV)")
    src.add_argument("--frames", help="folder of frames (or a LaSOT sequence folder with img/)")
    src.add_argument("--webcam", type=int, metavar="N", help="camera index")
    p.add_argument("--text", required=True, help="sentence describing the target")
    p.add_argument("--checkpoint", help="model checkpoint; without it a random-init network is used")
    p.add_argument("--init-box", metavar="x,y,w,h", help="first-frame box in pixels (template-free if omitted)")
    p.add_argument("--out", help="annotated video to write (mp4, OpenCV mp4v)")
    p.add_argument("--results", help="results file: one x,y,w,h line per frame")
    p.add_argument("--stream-port", type=int, default=0, help="serve live MJPEG on this port")
    p.add_argument("--stream-host", default="127.0.0.1", help="stream bind address (default loopback)")
    p.add_argument("--stream-wait", action="store_true", help="keep serving after the last frame")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--compat", default="corrected", choices=["reference", "corrected"])
    p.add_argument("--preset", default="tiny", help="model preset for a random-init network")
    p.add_argument("--tracker-preset", choices=["tf", "tf_tnl2k", "bbox"],
                   help="tracker preset (default: from the checkpoint, else tf)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-init network")
    p.add_argument("--max-frames", type=int, help="stop after N frames")
    add_weights_options(p)
    p.add_argument("--select", action="store_true",
                   help="draw the first-frame box in a window (Enter accepts, Esc cancels = sentence only)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--display", dest="display", action="store_true", default=None,
                       help="live window with box, κ, mode and the gate's decision (default when $DISPLAY is set)")
    shown.add_argument("--no-display", dest="display", action="store_false",
                       help="no window (default when there is no display)")
    p.add_argument("--window", choices=["auto", "opencv", "tk"], default="auto",
                   help="window toolkit: OpenCV HighGUI (opencv-python), else Tk (auto)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run)
