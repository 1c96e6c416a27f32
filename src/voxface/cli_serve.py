"""``voxface serve``: the web page (area "serve"; picked up by :mod:`voxface.cli`)."""

from __future__ import annotations

import argparse


def _cmd_serve(args: argparse.Namespace) -> None:
    from .app.web import serve

    print(f"voxface serve: http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    serve(args.run, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb)


def add_commands(sub) -> None:
    from .app.web import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_RUN, MAX_UPLOAD_MB

    p = sub.add_parser("serve", help="a web page: record or upload a voice, see and download the predicted 3D face",
                       description="Serve a web page (Gradio) that predicts a 3D face from a voice recorded in the "
                                   "browser or uploaded, shows it in a rotatable viewer with its render, and offers "
                                   f"it as OBJ and GLB. Without --run it uses {DEFAULT_RUN} (made by `voxface demo`); "
                                   "with no model at all the page says how to make one.")
    p.add_argument("--run", help=f"run folder of `voxface train supervised` or its predictor.pt (default: {DEFAULT_RUN})")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB, dest="max_upload_mb",
                   help="largest accepted audio file in MB (default: %(default)s)")
    p.set_defaults(func=_cmd_serve)
