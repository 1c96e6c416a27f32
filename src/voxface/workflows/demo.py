"""``voxface demo``: the whole supervised pipeline on the embedded default, end to end.

synthetic corpus -> speaker pre-training of the voice encoder -> supervised training ->
evaluation against the oracles and the ceiling -> report. Every stage resumes if interrupted.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..corpus.format import Corpus
from ..corpus.synthetic import SynthConfig, generate_corpus
from ..methods import speaker as speaker_method
from ..methods import supervised as supervised_method
from ..reports.voice_to_3d import UTTERANCES_PER_IDENTITY, evaluate_run
from ..runs import atomic

log = logging.getLogger(__name__)

DEMO_PHOTOS = 3
"""Photos per identity the demo renders (its preview and report show one to three); the methods that
learn from photos complete the corpus to 40 first (``corpus.synthetic.with_photos``)."""


def run_demo(out: str | Path = "runs/demo", corpus: str | Path = "data/synthetic", model: str = "builtin",
             progress: bool = True, synth: SynthConfig | None = None, speaker: speaker_method.Config | None = None,
             supervised: supervised_method.Config | None = None,
             per_identity: int = UTTERANCES_PER_IDENTITY) -> dict:
    """Run every stage (skipping finished ones) and return the evaluation metrics (``per_identity``
    test utterances per identity); the stage times also go to ``out/demo.json``."""
    out, corpus = Path(out), Path(corpus)
    timings = {}
    start = time.perf_counter()
    synth = synth or SynthConfig(model=model, images=DEMO_PHOTOS)
    if not (corpus / "manifest.json").is_file():
        log.info("[1/4] generating the synthetic corpus in %s", corpus)
        generate_corpus(corpus, synth, progress=progress)
    else:
        log.info("[1/4] reusing the corpus in %s", corpus)
        Corpus(corpus)
    timings["corpus"] = time.perf_counter() - start

    log.info("[2/4] pre-training the voice encoder as a speaker classifier")
    speaker = speaker or speaker_method.Config(corpus=str(corpus))
    t = time.perf_counter()
    speaker_method.fit(speaker, out / "speaker", progress=progress)
    timings["speaker"] = time.perf_counter() - t

    log.info("[3/4] training the supervised voice-to-3D regressor")
    supervised = supervised or supervised_method.Config(corpus=str(corpus), speaker_run=str(out / "speaker"))
    t = time.perf_counter()
    supervised_method.fit(supervised, out / "supervised", progress=progress)
    timings["supervised"] = time.perf_counter() - t

    log.info("[4/4] evaluating against the oracles and the ceiling")
    t = time.perf_counter()
    metrics = evaluate_run(out / "supervised", per_identity=per_identity, progress=progress)
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    metrics["demo_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    atomic.write_json(out / "demo.json", {"seconds": metrics["demo_seconds"], "corpus": str(corpus)})
    return metrics
