"""``voxface train supervised``: CMP supervised, frozen voice encoder + 3DMM regressor, L2 + triplet."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ..runs.config import TrainingSettings, count, positive, random_seed, setting, weight
from ..corpus.datasets import CROP_FRAMES, MIN_FRAMES, Triplets, random_crop
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.novelty import VoiceReference
from ..evaluate.population import FacePopulation
from ..inference import BACKBONES, VoiceTo3D
from ..models.regressor import UNCERTAINTY
from ..runs.distributed import data_loader
from ..runs.trainer import make_trainer, open_run, record_metrics, resume_checkpoint
from ..train.supervised import SupervisedCMP
from .data import UtteranceSet, utterance_set
from .speaker import load_encoder

log = logging.getLogger(__name__)

PREDICTOR_FILE = "predictor.pt"
RESEMBLYZER_DIM = 256


@dataclass
class SupervisedConfig(TrainingSettings):
    """Settings of the supervised method (configs/supervised_fast.yaml, configs/supervised_paper.yaml).

    ``embedding_bank``: with a frozen CMP encoder, embed this many random crops (lengths in
    [300, 800] frames) of each training utterance once and train the regressor on them; 0 runs the
    encoder on fresh crops every step, exactly as the paper (slow on a CPU, identical in the limit).
    ``uncertainty``: "none" (the paper's point regressor), "gaussian" (a Gaussian head trained with
    the negative log-likelihood, weight ``nll_weight``, covariance diagonal + rank ``covariance_rank``,
    the low-rank part a function of the voice or, with ``shared_covariance``, one learnt matrix)
    or "ensemble" (``ensemble_size`` Gaussian heads from different initialisations); docs/uncertainty.md.
    """

    corpus: str = "data/synthetic"
    backbone: str = setting("cmp", choices=BACKBONES)
    speaker_run: str | None = None
    max_steps: int = count(2000)
    batch_size: int = count(64)
    lr: float = positive(2e-4)
    betas: tuple[float, float] = setting((0.5, 0.999), ge=0, lt=1)
    triplet_margin: float = weight(1.0)
    triplet_weight: float = weight(1.0)
    dropout: float = setting(0.2, ge=0, lt=1)
    embedding_bank: int = count(16, minimum=0)
    val_fraction: float = setting(0.1, gt=0, lt=1)
    val_every: int = count(500)
    seed: int = random_seed()
    workers: int = count(2, minimum=0)
    feature_shards: str | None = None
    uncertainty: str = setting("none", choices=UNCERTAINTY)
    ensemble_size: int = count(5, minimum=2)
    covariance_rank: int = count(0, minimum=0)
    shared_covariance: bool = False
    nll_weight: float = weight(1.0)


def train_supervised(config: SupervisedConfig, run_dir: str | Path, progress: bool = True) -> VoiceTo3D:
    """Train on the corpus's F–Z identities (a ``val_fraction`` of them held out); save ``predictor.pt``."""
    if config.backbone == "cmp" and not config.speaker_run:
        raise VoxfaceError("the cmp backbone needs speaker_run: the run folder of `voxface train speaker`")
    run = open_run(run_dir, config, "supervised")
    L.seed_everything(config.seed, workers=True)
    corpus = check_corpus(config.corpus)
    model = corpus.model
    train_ids = corpus.identity_ids("train")
    rng = np.random.default_rng(config.seed)
    n_val = max(2, int(round(config.val_fraction * len(train_ids))))
    if len(train_ids) < n_val + 2:
        raise VoxfaceError(f"corpus {config.corpus} has {len(train_ids)} training identities (names F–Z); "
                           f"at least {n_val + 2} are needed to hold {n_val} out for validation")
    val_ids = sorted(rng.choice(train_ids, n_val, replace=False).tolist())
    fit_ids = [i for i in train_ids if i not in set(val_ids)]

    kind = "cmp_logmel" if config.backbone == "cmp" else "resemblyzer"
    encoder = load_encoder(config.speaker_run) if config.backbone == "cmp" else None
    embed_dim = encoder.embed_dim if encoder is not None else RESEMBLYZER_DIM
    sets = {name: utterance_set(corpus, ids, kind, config.workers, progress=progress,
                                feature_shards=config.feature_shards)
            for name, ids in (("fit", fit_ids), ("val", val_ids))}
    targets = {name: corpus.reference_shapes(s.identity_ids) for name, s in sets.items()}
    mean, std = targets["fit"].mean(0), targets["fit"].std(0)

    bank = encoder is not None and config.embedding_bank > 0
    datasets = {}
    for name, s in sets.items():
        if bank:
            s = _embedding_bank(encoder, s, config.embedding_bank, config.seed)
        crop = CROP_FRAMES if (encoder is not None and not bank) else None
        items = config.batch_size * config.val_every if name == "fit" else 20 * config.batch_size
        datasets[name] = Triplets(s.features, s.identity_index, targets[name], items, seed=config.seed, crop=crop)

    module = SupervisedCMP(None if bank else encoder, embed_dim, model.n_shape, torch.from_numpy(mean),
                           torch.from_numpy(std), lr=config.lr, betas=config.betas,
                           triplet_margin=config.triplet_margin, triplet_weight=config.triplet_weight,
                           dropout=config.dropout, uncertainty=config.uncertainty, members=config.ensemble_size,
                           rank=config.covariance_rank, shared_factor=config.shared_covariance,
                           nll_weight=config.nll_weight)
    trainer = make_trainer(run, config.max_steps, config.val_every, progress, config.device, config.precision)
    trainer.fit(module, data_loader(datasets["fit"], config.batch_size),
                data_loader(datasets["val"], config.batch_size), ckpt_path=resume_checkpoint(run))
    gender = {i.identity: i.gender for i in corpus.identities}
    population = FacePopulation.fit(model, corpus.reference_shapes(train_ids), np.array([gender[i] for i in train_ids]),
                                    seed=config.seed)
    predictor = VoiceTo3D(config.backbone, None if encoder is None else encoder.cpu(), module.regressor.cpu(), model,
                          provenance=training_provenance(corpus, len(train_ids)), population=population)
    if trainer.is_global_zero:
        predictor.reference = voice_reference(predictor, [sets["fit"], sets["val"]], predictor.provenance["trained_on"])
        predictor.save(run / PREDICTOR_FILE)
        record_metrics(run / "train_metrics.json", {k: float(v) for k, v in trainer.callback_metrics.items()}, trainer)
    return predictor


def training_provenance(corpus, n_identities: int) -> dict:
    """What a predictor says about its training voices wherever its predictions are shown."""
    kind = "synthetic" if corpus.synthetic else "real"
    return {"trained_on": f"the {kind} voices of {n_identities} identities of corpus {corpus.root}",
            "synthetic": bool(corpus.synthetic)}


def voice_reference(predictor: VoiceTo3D, sets: list[UtteranceSet], source: str) -> VoiceReference:
    """The reference of the training voices (``evaluate.novelty``), identities as the folds' groups."""
    features = [f for s in sets for f in s.features]
    groups = np.array([s.identity_ids[i] for s in sets for i in s.identity_index])
    return predictor.fit_reference(features, groups, source)


def _embedding_bank(encoder, data: UtteranceSet, per_utterance: int, seed: int) -> UtteranceSet:
    """Each utterance becomes ``per_utterance`` pseudo-utterances: embeddings (D,) of random crops.

    The crops of one utterance share one random length in [300, 800] frames, as a CMP batch does.
    """
    rng = np.random.default_rng([seed, 17])
    features, identity = [], []
    with torch.no_grad():
        for feats, ident in zip(data.features, data.identity_index):
            length = int(rng.integers(MIN_FRAMES, CROP_FRAMES + 1))
            crops = np.stack([random_crop(feats, length, rng).T for _ in range(per_utterance)])
            features += list(encoder(torch.from_numpy(crops)).numpy())
            identity += [ident] * per_utterance
    return UtteranceSet(data.identity_ids, [], np.array(identity), features)
