"""``voxface serve``: the web page."""

from __future__ import annotations

import argparse

from ..runs.config import cli_number
from ..runs.devices import add_device_argument


def _cmd_serve(args: argparse.Namespace) -> None:
    from ..app.web import serve

    serve(args.run, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, image_run=args.image_run,
          max_minutes=args.max_minutes, keep_minutes=args.keep_minutes, device=args.device)


def add_commands(sub) -> None:
    from ..app.settings import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_RUN, KEEP_MINUTES, MAX_UPLOAD_MB
    from ..audio.duration import SERVE_MAX_MINUTES

    p = sub.add_parser("serve", help="a web page: record or upload a voice, see and download the predicted 3D face",
                       description="Serve a web page (Gradio) that predicts a 3D face from a voice recorded in the "
                                   "browser or uploaded, shows it in a rotatable viewer with its render, and offers "
                                   f"it as OBJ and GLB. Without --run it uses {DEFAULT_RUN} (made by `voxface demo`); "
                                   "with no model at all the page says how to make one. With --image-run it also "
                                   "shows the face image a 2D generator makes from the voice.")
    p.add_argument("--run", help=f"run folder of `voxface train supervised` or its predictor.pt (default: {DEFAULT_RUN})")
    p.add_argument("--image-run", help="run folder of `voxface train gan2d` (or its voice_to_image.pt): also show "
                                       "the generated 2D face image")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=cli_number(int, ge=1, le=65535), default=DEFAULT_PORT,
                   help="port (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=cli_number(float, gt=0), default=MAX_UPLOAD_MB, dest="max_upload_mb",
                   help="largest accepted audio file in MB (default: %(default)s)")
    p.add_argument("--max-minutes", type=cli_number(float, gt=0), default=SERVE_MAX_MINUTES, dest="max_minutes",
                   help="longest accepted recording in minutes, read from the file before it is decoded "
                        "(default: %(default)s)")
    p.add_argument("--keep-minutes", type=cli_number(float, gt=0), default=KEEP_MINUTES, dest="keep_minutes",
                   help="how long the files of an answer stay downloadable; everything is removed when the "
                        "server stops (default: %(default)s)")
    add_device_argument(p)
    p.set_defaults(func=_cmd_serve)
