"""CMP unsupervised end to end: the unsupervised pipeline (expert, GAN alone, joint training, evaluation)
and the knowledge-distillation ablation (Table S-5 analogue). Every run resumes."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from ..corpus.format import Corpus
from ..corpus.synthetic import with_photos
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.geometry import absolute_ratio_error
from ..losses.distillation import DISTILLERS
from ..methods import expert as expert_method
from ..methods import unsupervised as unsupervised_method
from ..methods.unsupervised import gan_checkpoint
from ..reports.unsupervised import CMP_UNSUPERVISED, evaluate_unsupervised, unsupervised_predictions
from ..reports.voice_to_3d import UTTERANCES_PER_IDENTITY
from ..runs import atomic

log = logging.getLogger(__name__)

PHOTOS = 40
"""Photos per identity the pipeline makes sure a synthetic corpus has (docs/synthetic_corpus.md)."""
PAPER_KD_ARE = {"vanilla": .0298, "attention": .0304, "sp": .0262, "cc": .0263, "rkd": .0254, "crd": .0255,
                "vid": .0259, "pkt": .0254}
"""Table S-5 of the CMP paper: mean ARE per distiller (real data, for comparison only)."""


# ------------------------------------------------------------------------------- run settings
def gan_only(config: unsupervised_method.Config) -> unsupervised_method.Config:
    """The cascades' GAN-only run: ``warm_start + max_steps`` iterations from scratch."""
    return dataclasses.replace(config, student=False, init_from=None, max_steps=config.warm_start + config.max_steps)


def joint(config: unsupervised_method.Config, gan_run: Path | None, **changes) -> unsupervised_method.Config:
    """A joint run; with ``warm_start`` it starts from ``gan_run`` after ``warm_start`` iterations."""
    if config.warm_start and gan_run is None:
        raise VoxfaceError(f"warm_start ({config.warm_start}) needs the GAN-only run to start from")
    if config.warm_start and config.warm_start % config.val_every:
        raise VoxfaceError(f"warm_start ({config.warm_start}) must be a multiple of val_every ({config.val_every}): "
                           "the GAN-only run keeps a checkpoint every val_every iterations")
    init_from = str(gan_checkpoint(gan_run, config.warm_start)) if config.warm_start else None
    return dataclasses.replace(config, student=True, init_from=init_from, **changes)


# ------------------------------------------------------------------------------- KD ablation
def student_are(run: Path, corpus: Corpus, per_identity: int, progress: bool = True) -> dict:
    """ARE (per ratio and mean) of a joint run's student on the test identities."""
    meshes, _ = unsupervised_predictions(run, None, corpus, per_identity, progress)
    references = corpus.model.reconstruct(corpus.reference_shapes(corpus.identity_ids("test")))
    return absolute_ratio_error(meshes[CMP_UNSUPERVISED], references, corpus.model.measurements).as_dict()


def kd_ablation(config: unsupervised_method.Config, out_dir: str | Path, distillers: list[str] | None = None,
                per_identity: int = UTTERANCES_PER_IDENTITY, gan_run: str | Path | None = None,
                progress: bool = True) -> dict:
    """Train CMP-unsupervised once per distiller (``out/<name>``, resumable) and tabulate the students'
    ARE (the Table S-5 analogue): ``kd_ablation.json`` and ``kd_ablation.md``.

    With ``warm_start`` the runs start from ``gan_run`` (e.g. a pipeline's ``gan/``); without one the
    GAN-only run is trained into ``out/gan`` first.
    """
    out = Path(out_dir)
    corpus = check_corpus(config.corpus)
    if config.warm_start and gan_run is None:
        gan_run = out / "gan"
        unsupervised_method.fit(gan_only(config), gan_run, progress)
    rows = {}
    for name in distillers or list(DISTILLERS):
        start = time.perf_counter()
        unsupervised_method.fit(joint(config, Path(gan_run) if gan_run else None, distiller=name, distill_weight=None),
                           out / name, progress)
        rows[name] = {"ARE": student_are(out / name, corpus, per_identity, progress),
                      "seconds": round(time.perf_counter() - start, 1), "paper_mean_ARE": PAPER_KD_ARE[name]}
        log.info("KD ablation %s: mean ARE %.4f", name, rows[name]["ARE"]["mean"])
    table = {"corpus": str(corpus.root), "iterations": config.max_steps, "warm_start": config.warm_start,
             "rows": rows}
    atomic.write_json(out / "kd_ablation.json", table)
    lines = ["| distiller | ER | FR | MR | CR | mean ARE | paper (Table S-5) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{r['ARE'][k]:.4f}" for k in ("ER", "FR", "MR", "CR", "mean"))
              + f" | {r['paper_mean_ARE']:.4f} |" for name, r in rows.items()]
    atomic.write_text(out / "kd_ablation.md", "\n".join(lines) + "\n")
    return table


# ------------------------------------------------------------------------------- pipeline
def run_pipeline(out_dir: str | Path, speaker_run: str, supervised_run: str, corpus: str = "data/synthetic",
                 expert: expert_method.Config | None = None, unsupervised: unsupervised_method.Config | None = None,
                 expert_run: str | None = None, progress: bool = True) -> dict:
    """The whole unsupervised pipeline in ``out``: ``expert/`` (unless ``expert_run`` names a finished
    one, e.g. another seed's), ``gan/`` (GAN alone), ``cmp/`` (joint, from ``gan/`` after ``warm_start`` iterations),
    then the evaluation in ``cmp/evaluation``. Each stage resumes; stage times go to ``pipeline.json``."""
    out = Path(out_dir)
    with_photos(corpus, PHOTOS, progress)  # the demo's corpus has a few photos; the GAN needs many
    expert = dataclasses.replace(expert or expert_method.Config(), corpus=corpus)
    unsupervised = dataclasses.replace(unsupervised or unsupervised_method.Config(), corpus=corpus,
                                       speaker_run=speaker_run, expert_run=expert_run or str(out / "expert"))
    seconds = {}
    stages = [("expert", lambda: expert_method.reported_are(expert_run) if expert_run
               else expert_method.fit(expert, out / "expert", progress).metrics),
              ("gan", lambda: unsupervised_method.fit(gan_only(unsupervised), out / "gan", progress)),
              ("cmp", lambda: unsupervised_method.fit(joint(unsupervised, out / "gan"), out / "cmp", progress)),
              ("evaluate", lambda: evaluate_unsupervised(out / "cmp", supervised_run, out / "gan", corpus,
                                                         progress=progress))]
    results = {}
    for name, stage in stages:
        start = time.perf_counter()
        results[name] = stage()
        seconds[name] = round(time.perf_counter() - start, 1)
        log.info("pipeline stage %s: %.0f s", name, seconds[name])
    metrics = results["evaluate"]
    summary = {"seconds": seconds, "total_seconds": round(sum(seconds.values()), 1),
               "mean_ARE": {k: v["ARE"]["mean"] for k, v in metrics["methods"].items()},
               "expert_ARE": results["expert"], "expert_run": unsupervised.expert_run}
    atomic.write_json(out / "pipeline.json", summary)
    return summary
