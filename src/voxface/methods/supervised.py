"""CMP supervised (``voxface train supervised``): a frozen voice encoder and a 3DMM regressor trained
with L2 + triplet (paper Eq. 2–3); optionally a predictive distribution (docs/uncertainty.md).

Data: the corpus's training identities (names F–Z), a ``val_fraction`` of them held out for
validation; (anchor, positive, negative) utterances with their identities' reference coefficients.
With the CMP encoder and ``embedding_bank`` > 0 the frozen encoder's embeddings of random crops are
computed once (:func:`voxface.corpus.data.embedding_bank`). Saves ``predictor.pt`` (a
:class:`~voxface.predictors.voice_to_3d.VoiceTo3D` with the reference of its training voices and its
training population) and ``metrics.json``. With an uncertainty head, the predictor also holds how its
spread scales with the seconds of speech heard, fitted on the held-out validation voices' speech cut to
1, 2, 4 and 8 s windows (:mod:`voxface.evaluate.length_calibration`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn

from ..corpus.data import UtteranceSet, embedding_bank, split_identities, utterance_set
from ..corpus.datasets import CROP_FRAMES, MIN_FRAMES, Triplets, random_batch_length
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.in_distribution import VoiceReference
from ..evaluate.population import FacePopulation
from ..losses.triplet import squared_triplet_loss
from ..models.regressor import UNCERTAINTY, create_regressor
from ..predictors.bundle import read_network
from ..predictors.provenance import training_provenance
from ..predictors.voice_to_3d import BACKBONES, FEATURES, VoiceTo3D
from ..predictors.voice_to_3d import BUNDLE_FILE as PREDICTOR_FILE
from ..runs.config import TrainingSettings, count, positive, random_seed, setting, shortest_first, weight
from ..runs.distributed import data_loader
from ..runs.folder import run_folder
from ..runs.trainer import OneLossModule, finished_already, fit_module, record_metrics
from . import Fitted
from .speaker import ENCODER

log = logging.getLogger(__name__)

KIND = "supervised"
RESEMBLYZER_DIM = 256


@dataclass
class Config(TrainingSettings):
    """Settings of the supervised method (configs/supervised_fast.yaml, configs/supervised_paper.yaml).

    ``embedding_bank``: with a frozen CMP encoder, embed this many random crops (lengths in
    ``bank_frames``, [300, 800] frames as CMP's batches by default) of each training utterance once
    and train the regressor on them; 0 runs the encoder on fresh crops every step, exactly as the
    paper (slow on a CPU, identical in the limit). A head trained on shorter crops too
    (``bank_frames: [100, 800]``) hears what the live page hears after 1 s of speech.
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
    bank_frames: tuple[int, int] = setting((MIN_FRAMES, CROP_FRAMES), ge=50, le=CROP_FRAMES, rule=shortest_first)
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


class SupervisedCMP(OneLossModule):
    """Regress standardised 3DMM coefficients from a frozen voice embedding.

    The loss on a batch of (anchor, positive, negative) crops is the mean squared coefficient error
    of all three plus ``triplet_weight`` times the squared-distance triplet loss on the predicted
    coefficients (margin ``triplet_margin``).

    With ``uncertainty`` "gaussian" the regressor also predicts a covariance, trained by adding
    ``nll_weight`` times the Gaussian negative log-likelihood of every crop's target; "ensemble" trains
    ``members`` such regressors from different initialisations, each with all the losses.

    Args:
        encoder: a frozen voice encoder, (B, 64, T) -> (B, D); or None when batches carry
            precomputed embeddings (the Resemblyzer backbone).
        embed_dim: D.
        n_targets: K (+ E) coefficients to predict.
        target_mean, target_std: (n_targets,) whitening statistics of the training targets.
    """

    def __init__(self, encoder: nn.Module | None, embed_dim: int, n_targets: int,
                 target_mean: torch.Tensor, target_std: torch.Tensor, lr: float = 2e-4,
                 betas=(0.5, 0.999), triplet_margin: float = 1.0, triplet_weight: float = 1.0,
                 dropout: float = 0.2, uncertainty: str = "none", members: int = 5, rank: int = 0,
                 shared_factor: bool = False, nll_weight: float = 1.0):
        super().__init__()
        self.save_hyperparameters(ignore=["encoder", "target_mean", "target_std"])
        self.encoder = encoder
        if encoder is not None:
            encoder.requires_grad_(False)
        self.regressor = create_regressor(uncertainty, embed_dim, n_targets, dropout, members, rank, shared_factor)
        self.regressor.set_target_stats(target_mean, target_std)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()  # frozen: BatchNorm keeps its pre-trained statistics
        return self

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 64, T) features -> (B, D); or (B, D) precomputed embeddings passed through."""
        if self.encoder is None:
            return inputs
        with torch.no_grad():
            return self.encoder(inputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 64, T) or (B, D) -> (B, n_targets) coefficients."""
        return self.regressor(self.embed(inputs))

    def _loss(self, batch, stage: str):
        x = batch["features"]                                # (B, 3, 64, T) or (B, 3, D)
        if stage == "train" and self.encoder is not None:
            x = random_batch_length(x)
        b = x.shape[0]
        embeddings = self.embed(x.flatten(0, 1))
        regression = triplet = nll = 0.0
        for head in getattr(self.regressor, "members", [self.regressor]):
            pred = head(embeddings).view(b, 3, -1)           # anchor, positive, negative
            regression = regression + (pred - batch["target"]).pow(2).sum(-1).mean()
            triplet = triplet + squared_triplet_loss(pred[:, 0], pred[:, 1], pred[:, 2], self.hparams.triplet_margin)
            if self.hparams.uncertainty != "none":
                nll = nll + head.negative_log_likelihood(embeddings, batch["target"].flatten(0, 1)).mean()
        loss = regression + self.hparams.triplet_weight * triplet + self.hparams.nll_weight * nll
        logged = {f"{stage}/loss": loss, f"{stage}/l2": regression, f"{stage}/triplet": triplet}
        if self.hparams.uncertainty != "none":
            logged[f"{stage}/nll"] = nll
        self.log_dict(logged, prog_bar=stage == "train", batch_size=b, sync_dist=stage == "val")
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.regressor.parameters(), lr=self.hparams.lr, betas=tuple(self.hparams.betas))


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Train on the corpus's F–Z identities (a ``val_fraction`` of them held out); save ``predictor.pt``."""
    if config.backbone == "cmp" and not config.speaker_run:
        raise VoxfaceError("the cmp backbone needs speaker_run: the run folder of `voxface train speaker`")
    with run_folder(run_dir, config, KIND) as run:
        L.seed_everything(config.seed, workers=True)
        corpus = check_corpus(config.corpus)
        model = corpus.model
        train_ids = corpus.identity_ids("train")
        fit_ids, val_ids = split_identities(train_ids, config.val_fraction, config.seed, config.corpus)
        encoder = read_network(config.speaker_run, ENCODER) if config.backbone == "cmp" else None
        embed_dim = encoder.embed_dim if encoder is not None else RESEMBLYZER_DIM
        sets = {name: utterance_set(corpus, ids, FEATURES[config.backbone], config.workers, progress=progress,
                                    feature_shards=config.feature_shards)
                for name, ids in (("fit", fit_ids), ("val", val_ids))}
        targets = {name: corpus.reference_shapes(s.identity_ids) for name, s in sets.items()}
        mean, std = targets["fit"].mean(0), targets["fit"].std(0)

        bank = encoder is not None and config.embedding_bank > 0
        datasets = {}
        for name, s in sets.items():
            if bank:
                s = embedding_bank(encoder, s, config.embedding_bank, config.seed, config.bank_frames)
            crop = CROP_FRAMES if (encoder is not None and not bank) else None
            items = config.batch_size * config.val_every if name == "fit" else 20 * config.batch_size
            datasets[name] = Triplets(s.features, s.identity_index, targets[name], items, seed=config.seed, crop=crop)

        module = SupervisedCMP(None if bank else encoder, embed_dim, model.n_shape, torch.from_numpy(mean),
                               torch.from_numpy(std), lr=config.lr, betas=config.betas,
                               triplet_margin=config.triplet_margin, triplet_weight=config.triplet_weight,
                               dropout=config.dropout, uncertainty=config.uncertainty, members=config.ensemble_size,
                               rank=config.covariance_rank, shared_factor=config.shared_covariance,
                               nll_weight=config.nll_weight)
        trainer = fit_module(module, run, config, data_loader(datasets["fit"], config.batch_size),
                             data_loader(datasets["val"], config.batch_size), max_steps=config.max_steps,
                             val_every=config.val_every, progress=progress)
        gender = {i.identity: i.gender for i in corpus.identities}
        population = FacePopulation.fit(model, corpus.reference_shapes(train_ids),
                                        np.array([gender[i] for i in train_ids]), seed=config.seed)
        predictor = VoiceTo3D(config.backbone, None if encoder is None else encoder.cpu(), module.regressor.cpu(),
                              model, provenance=training_provenance(corpus, len(train_ids)), population=population)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if trainer.is_global_zero and finished_already(run / PREDICTOR_FILE, trainer):
            log.info("%s: the run was finished already; its predictor is kept as it is", run / PREDICTOR_FILE)
            predictor = VoiceTo3D.load(run / PREDICTOR_FILE)
        elif trainer.is_global_zero:
            predictor.reference = voice_reference(predictor, [sets["fit"], sets["val"]],
                                                  predictor.provenance["trained_on"])
            if predictor.probabilistic:
                speech, truths = validation_speech(corpus, val_ids)
                calibration = predictor.fit_length_calibration(speech, truths, config.seed)
                log.info("spread scale by seconds of speech (the trend of the held-out voices' %s): %s",
                         dict(zip(calibration.seconds.tolist(), np.round(calibration.held_out, 3).tolist())),
                         dict(zip(calibration.seconds.tolist(), np.round(calibration.scale, 3).tolist())))
            predictor.save(run / PREDICTOR_FILE)
        metrics = record_metrics(run, metrics, trainer)
        log.info("supervised regressor (%s backbone, %s head) on %d identities: %s", config.backbone,
                 config.uncertainty, len(train_ids), metrics)
        return Fitted(run, predictor, metrics)


def validation_speech(corpus, identity_ids: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """The speech of the validation identities' utterances, as ``voxface predict`` reads each file,
    and (N, K) the true standardised coefficients of each one's identity."""
    from ..workflows.predict import read_voice

    truth = dict(zip(identity_ids, corpus.reference_shapes(identity_ids)))
    speech, truths = [], []
    for u in (u for u in corpus.utterances if u.identity in truth):
        try:
            speech.append(read_voice(corpus.path(u.audio)))
        except VoxfaceError as e:  # a file predict would refuse is not a voice to calibrate on
            log.warning("length calibration: %s", e)
            continue
        truths.append(truth[u.identity])
    return speech, np.stack(truths)


def voice_reference(predictor: VoiceTo3D, sets: list[UtteranceSet], source: str) -> VoiceReference:
    """The reference of the training voices (``evaluate.in_distribution``), identities as the folds' groups."""
    features = [f for s in sets for f in s.features]
    groups = np.array([s.identity_ids[i] for s in sets for i in s.identity_index])
    return predictor.fit_reference(features, groups, source)
