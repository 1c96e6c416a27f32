"""``voxface train speaker``: pre-train the CMP voice encoder as a speaker classifier, then freeze it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from ..runs import atomic
from ..runs.checkpoints import load_tagged, reads_saved_file
from ..runs.config import TrainingSettings, count, positive, random_seed
from ..corpus.datasets import SpeakerCrops
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..models.voice_encoders import CMPVoiceEncoder
from ..runs.distributed import data_loader
from ..runs.trainer import make_trainer, open_run, record_metrics, resume_checkpoint
from ..train.speaker import SpeakerPretraining
from .data import held_out_mask, utterance_set

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"


@dataclass
class SpeakerConfig(TrainingSettings):
    """Speaker pre-training settings (configs/speaker_fast.yaml, configs/speaker_paper.yaml)."""

    corpus: str = "data/synthetic"
    max_steps: int = count(600)
    batch_size: int = count(32)
    lr: float = positive(1e-3)
    cosine_decay: bool = True
    embed_dim: int = count(64)
    held_out_per_identity: int = count(1)
    val_every: int = count(200)
    seed: int = random_seed()
    workers: int = count(2, minimum=0)
    feature_shards: str | None = None


def train_speaker_encoder(config: SpeakerConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Train on the corpus's training identities; save ``encoder.pt``; return validation metrics."""
    run = open_run(run_dir, config, "speaker")
    L.seed_everything(config.seed, workers=True)
    corpus = check_corpus(config.corpus)
    data = utterance_set(corpus, corpus.identity_ids("train"), "cmp_logmel", config.workers, progress=progress,
                         feature_shards=config.feature_shards)
    held_out = held_out_mask(data.identity_index, config.held_out_per_identity)
    train, val = data.subset(~held_out), data.subset(held_out)
    if not len(val.features):
        raise VoxfaceError(f"corpus {config.corpus} has too few utterances per identity to hold any out")
    module = SpeakerPretraining(len(data.identity_ids), lr=config.lr, embed_dim=config.embed_dim,
                                cosine_steps=config.max_steps if config.cosine_decay else 0)
    loaders = (
        data_loader(SpeakerCrops(train.features, train.identity_index, config.batch_size * config.val_every,
                                 seed=config.seed), config.batch_size),
        data_loader(SpeakerCrops(val.features, val.identity_index, seed=config.seed + 1), config.batch_size),
    )
    trainer = make_trainer(run, config.max_steps, config.val_every, progress, config.device, config.precision)
    trainer.fit(module, *loaders, ckpt_path=resume_checkpoint(run))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if trainer.is_global_zero:
        save_encoder(run / ENCODER_FILE, module.encoder.cpu(), len(data.identity_ids))
        recorded = record_metrics(run / "metrics.json", {"held_out_utterances": len(val.features), **metrics}, trainer)
        metrics = {k: v for k, v in recorded.items() if k.startswith("val/")}
    log.info("speaker encoder: %s", metrics)
    return metrics


def save_encoder(path: Path, encoder: CMPVoiceEncoder, n_speakers: int) -> None:
    with atomic.atomic_path(path) as tmp:
        torch.save({"format": "voxface-cmp-voice-encoder", "embed_dim": encoder.embed_dim,
                    "n_speakers": n_speakers, "state_dict": encoder.state_dict()}, tmp)


@reads_saved_file
def load_encoder(run_or_file: str | Path) -> CMPVoiceEncoder:
    """The frozen, eval-mode encoder saved by a speaker run (its folder or its encoder.pt)."""
    saved, _ = load_tagged(run_or_file, ENCODER_FILE, "voxface-cmp-voice-encoder", "pre-trained voice encoder",
                           "run `voxface train speaker` first")
    encoder = CMPVoiceEncoder(embed_dim=saved["embed_dim"])
    encoder.load_state_dict(saved["state_dict"])
    return encoder.eval().requires_grad_(False)
