"""The web page's defaults, in a module of their own so that ``voxface serve --help`` states them
without loading the page (Gradio, torch)."""

from pathlib import Path

DEFAULT_RUN = Path("runs/demo/supervised")
"""The run ``voxface demo`` makes; served when no run is given."""
MAKE_RUN_COMMAND = "make demo"
MAX_UPLOAD_MB = 20.0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
RENDER_SIZE = 480
"""Pixels of the page's render of an answer."""
LIVE_RENDER_SIZE = 256
"""Pixels of the live renders (sent inline once a second, so kept small; drawn from a coarser mesh,
:data:`LIVE_PREVIEW_CELL_PX`)."""
LIVE_PREVIEW_CELL_PX = 2.0
"""Size in pixels of the live preview's vertex clusters (:mod:`voxface.face3d.simplify`): a live render
shows the predicted mesh averaged over cubes this wide on the image, the final answer the full mesh."""
FACE_IMAGE_SIZE = 256
"""Pixels of the shown 2D face image (the generators make 64×64; enlarged with bicubic interpolation)."""
CONCURRENCY = 4
"""Requests Gradio runs at once (decoding, predicting, writing); more wait in its queue."""
KEEP_MINUTES = 60.0
"""How long Gradio keeps the files of an answer (uploads, meshes, renders) for the page's links."""
LIVE_EVERY_S = 1.0
"""Seconds of microphone audio per live chunk: the page updates once a second while recording. Every
update predicts from the whole recording, so half-second chunks double the server's work: on 2 cores
two live visitors and an upload then wait longer than an update is worth (bench/bench_live.py,
docs/serve.md)."""
