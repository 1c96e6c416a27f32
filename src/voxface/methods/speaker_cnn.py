"""The biometric-matching paper's speaker CNN (``voxface train speaker-cnn``, ``speaker-cnn-fsdd``):
60×41×2 mel+delta patches -> 128-d voice embedding, trained as a speaker classifier with early stopping.

Two settings (``setting``):

- ``paper``: every identity of the corpus is used (the paper's 9 identities with many utterances
  each); the last ``test_per_identity`` utterances of each identity are the test voices, the
  ``val_per_identity`` before them drive the speaker CNN's early stopping, the rest train.
- ``cmp``: the CMP split: identities named F–Z train (``val_per_identity`` utterances of each held
  out for early stopping), the unseen A–E identities are tested with all their utterances.

The run saves ``speaker_cnn.pt`` (a ``speaker-cnn`` file of :mod:`voxface.predictors.bundle`: the
network and its classes), ``metrics.json`` and ``voice_embeddings.npz``:
the 128-d embedding of every 1.28 s mel+delta patch of every utterance of the corpus, with its
utterance, identity and role (train / val / test), which ``voxface train gan2d`` reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from ..audio.features import mel_delta
from ..audio.voice import prepare_voice
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..models.speaker_cnn import SpeakerCNN
from ..predictors.bundle import FILES, write_bundle
from ..predictors.voice_to_image import speech_patches
from ..reports.figures import plot_tsne
from ..runs import atomic
from ..runs.config import TrainingSettings, count, positive, random_seed, weight
from ..runs.config import setting as choice_or_range
from ..runs.distributed import data_loader, is_writer
from ..runs.folder import run_folder
from ..runs.trainer import ClassifierSteps, fit_module, record_metrics
from . import Fitted

log = logging.getLogger(__name__)

SETTINGS = ("paper", "cmp")
SPEAKER_CNN = "speaker-cnn"
MODEL_FILE = FILES[SPEAKER_CNN]
EMBEDDINGS_FILE = "voice_embeddings.npz"
PATCHES_FILE = "voice_patches.npz"


@dataclass
class Config(TrainingSettings):
    """Speaker-CNN settings (configs/gan2d_paper.yaml, configs/gan2d_cmp_split.yaml)."""

    corpus: str = "data/synth9"
    setting: str = choice_or_range("paper", choices=SETTINGS)
    test_per_identity: int = count(12, minimum=0)
    val_per_identity: int = count(6)
    max_epochs: int = count(30)
    patience: int = count(5, minimum=0)
    batch_size: int = count(64)
    lr: float = positive(1e-3)
    l2: float = weight(1e-3)
    channels: int = count(128)
    dropout: float = choice_or_range(0.5, ge=0, lt=1)
    seed: int = random_seed()


# ---------------------------------------------------------------- voice data

def utterance_roles(corpus: Corpus, setting: str, test_per_identity: int, val_per_identity: int) -> list[str]:
    """The role ("train", "val", "test" or "" = unused) of each of ``corpus.utterances``."""
    if setting not in SETTINGS:
        raise VoxfaceError(f"unknown setting {setting!r}; choose one of {SETTINGS}")
    split = {i.identity: i.split for i in corpus.identities}
    by_identity: dict[str, list[int]] = {}
    for n, u in enumerate(corpus.utterances):
        by_identity.setdefault(u.identity, []).append(n)
    roles = [""] * len(corpus.utterances)
    for ident, rows in by_identity.items():
        if setting == "cmp" and split[ident] == "test":
            held = {"test": rows}
        else:
            n_test = test_per_identity if setting == "paper" else 0
            if len(rows) <= n_test + val_per_identity:
                raise VoxfaceError(f"identity {ident} of {corpus.root} has {len(rows)} utterances; the "
                                   f"{setting} setting needs more than {n_test + val_per_identity} "
                                   "(lower test_per_identity / val_per_identity or synthesise more)")
            cut_val, cut_test = len(rows) - n_test - val_per_identity, len(rows) - n_test
            held = {"train": rows[:cut_val], "val": rows[cut_val:cut_test], "test": rows[cut_test:]}
        for role, members in held.items():
            for n in members:
                roles[n] = role
    return roles


def voice_patches(corpus: Corpus, cache: Path, progress: bool = True) -> dict[str, np.ndarray]:
    """mel+delta patches of every utterance, cached in ``cache`` (npz; by the writer process).

    Returns:
        ``patches`` (P, 2, 60, 41) float32 and ``utterance`` (P,) int index into corpus.utterances.
    """
    if cache.is_file():
        with np.load(cache) as z:
            if len(z["n_utterances"]) == 1 and int(z["n_utterances"][0]) == len(corpus.utterances):
                return {"patches": z["patches"], "utterance": z["utterance"]}
    patches, owner = [], []
    for n, u in enumerate(tqdm(corpus.utterances, desc="mel+delta patches", unit="utt", disable=not progress)):
        p = speech_patches(corpus.path(u.audio))
        patches.append(p)
        owner.append(np.full(len(p), n))
    out = {"patches": np.concatenate(patches).astype(np.float32), "utterance": np.concatenate(owner)}
    if is_writer():
        atomic.write_npz(cache, **out, n_utterances=np.array([len(corpus.utterances)]))
    return out


def tensor_loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """This process's batches of (x, y) rows (``batch_size`` in all), shuffled with ``seed`` when ``shuffle``."""
    return data_loader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size, seed if shuffle else None)


class SpeakerCNNTraining(ClassifierSteps):
    """Speaker classification on (B, 2, 60, 41) patches; validation loss drives early stopping.

    Args:
        n_classes: training speakers.
        lr: Adam learning rate (1e-3 in the paper).
        l2: weight of the squared fully-connected weights in the loss (0.001, Keras-style).
    """

    def __init__(self, n_classes: int, lr: float = 1e-3, l2: float = 1e-3, channels: int = 128, dropout: float = 0.5):
        super().__init__()
        self.save_hyperparameters()
        self.model = SpeakerCNN(n_classes, channels=channels, dropout=dropout)

    def penalty(self) -> torch.Tensor:
        return self.hparams.l2 * self.model.fc_l2()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def fit_speaker_cnn(run: Path, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                    n_classes: int, config, progress: bool = True) -> tuple[SpeakerCNN, dict]:
    """Train a speaker CNN with early stopping on validation loss (checked once per epoch).

    Args:
        train, val: (patches (P, 2, 60, 41) float32, labels (P,) int64).
        config: has batch_size, max_epochs, patience, lr, l2, channels, dropout, seed.

    Returns:
        (the trained model in eval mode on the CPU, {"val/acc", "val/loss", "epochs"}, the Trainer).
    """
    L.seed_everything(config.seed, workers=True)
    module = SpeakerCNNTraining(n_classes, lr=config.lr, l2=config.l2, channels=config.channels,
                                dropout=config.dropout)
    loader = tensor_loader(*train, config.batch_size, True, config.seed)
    trainer = fit_module(module, run, config, loader, tensor_loader(*val, 256, False, config.seed),
                         max_steps=config.max_epochs * len(loader), val_every=len(loader),
                         callbacks=(EarlyStopping("val/loss", patience=config.patience, mode="min"),),
                         progress=progress)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    metrics["epochs"] = int(trainer.current_epoch)
    return module.model.cpu().eval(), metrics, trainer


@torch.no_grad()
def embed_patches(model: SpeakerCNN, patches: np.ndarray, batch: int = 512) -> np.ndarray:
    """(P, 2, 60, 41) -> (P, 128) float32 voice embeddings."""
    model.eval()
    return torch.cat([model.embed(torch.from_numpy(patches[i:i + batch])) for i in range(0, len(patches), batch)]).numpy()


@torch.no_grad()
def patch_accuracy(model: SpeakerCNN, patches: np.ndarray, labels: np.ndarray, batch: int = 512) -> float:
    """Share of patches whose predicted speaker is ``labels``."""
    model.eval()
    logits = torch.cat([model(torch.from_numpy(patches[i:i + batch])) for i in range(0, len(patches), batch)])
    return float((logits.argmax(1).numpy() == labels).mean())


def fit(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """Train the speaker CNN on the setting's training voices; embed every patch; t-SNE of test voices."""
    with run_folder(run_dir, config, "speaker-cnn") as run:
        corpus = check_corpus(config.corpus)
        roles = np.array(utterance_roles(corpus, config.setting, config.test_per_identity, config.val_per_identity))
        data = voice_patches(corpus, run / PATCHES_FILE, progress)
        identity = np.array([u.identity for u in corpus.utterances])[data["utterance"]]
        role = roles[data["utterance"]]
        classes = sorted(set(identity[role == "train"]))
        label = np.array([classes.index(i) if i in classes else -1 for i in identity], dtype=np.int64)
        train, val = role == "train", role == "val"
        model, metrics, trainer = fit_speaker_cnn(run, (data["patches"][train], label[train]),
                                                  (data["patches"][val], label[val]), len(classes), config, progress)
        metrics["val_patch_accuracy"] = patch_accuracy(model, data["patches"][val], label[val])
        test = role == "test"
        if config.setting == "paper":
            metrics["test_patch_accuracy"] = patch_accuracy(model, data["patches"][test], label[test])
        embeddings = embed_patches(model, data["patches"])
        if trainer.is_global_zero:
            write_bundle(run / MODEL_FILE, SPEAKER_CNN, {"network": model}, classes=[str(c) for c in classes])
            atomic.write_npz(run / EMBEDDINGS_FILE, embedding=embeddings, utterance=data["utterance"],
                             identity=identity, role=role)
            plot_tsne(run / "voice_tsne.png", embeddings[test], identity[test], "test voice embeddings (t-SNE)",
                      config.seed)
        metrics.update(classes=len(classes), train_patches=int(train.sum()), test_patches=int(test.sum()))
        metrics = record_metrics(run, metrics, trainer)
        log.info("speaker CNN: %s", metrics)
        return Fitted(run, model, metrics)


def load_voice_embeddings(speaker_run: str | Path) -> dict[str, np.ndarray]:
    """``embedding`` (P, 128), ``utterance``, ``identity``, ``role`` (P,) saved by a speaker-CNN run."""
    path = Path(speaker_run) / EMBEDDINGS_FILE
    if not path.is_file():
        raise VoxfaceError(f"no voice embeddings at {path}; run `voxface train speaker-cnn --run {speaker_run}` first")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------- real voices

def fit_fsdd(config: Config, run_dir: str | Path, progress: bool = True) -> Fitted:
    """``voxface train speaker-cnn-fsdd``: speaker-CNN accuracy on held-out real recordings of FSDD (6 speakers).

    ``config.corpus`` is the Free Spoken Digit Dataset folder (``recordings/{digit}_{speaker}_{index}.wav``);
    its own split replaces ``setting`` / ``test_per_identity`` / ``val_per_identity``: recordings with
    index 45–49 are the test set, 40–44 drive early stopping, 0–39 train (for every speaker and digit).
    Clips are short (~0.4 s), so no silence removal; each is tiled to one 1.28 s mel+delta patch
    (``mel_delta``). Writes ``metrics.json`` (``test_accuracy`` over the held-out recordings).
    """
    files = sorted(Path(config.corpus).glob("recordings/*.wav"))
    if not files:
        raise VoxfaceError(f"no FSDD recordings under {config.corpus}/recordings (expected "
                           "{digit}_{speaker}_{index}.wav); pass --corpus ../shared/data/fsdd")
    with run_folder(run_dir, config, "speaker-cnn-fsdd") as run:
        speakers = sorted({f.stem.split("_")[1] for f in files})
        patches = np.stack([np.moveaxis(mel_delta(prepare_voice(f, min_seconds=0.05, vad=False))[0], -1, 0)
                            for f in tqdm(files, desc="FSDD patches", unit="file", disable=not progress)])
        label = np.array([speakers.index(f.stem.split("_")[1]) for f in files], dtype=np.int64)
        index = np.array([int(f.stem.split("_")[2]) for f in files])
        train, val, test = index < 40, (index >= 40) & (index < 45), index >= 45
        model, metrics, trainer = fit_speaker_cnn(run, (patches[train], label[train]), (patches[val], label[val]),
                                         len(speakers), config, progress)
        metrics.update(speakers=len(speakers), train_recordings=int(train.sum()), test_recordings=int(test.sum()),
                       test_accuracy=patch_accuracy(model, patches[test], label[test]))
        metrics = record_metrics(run, metrics, trainer)
        log.info("FSDD speaker CNN: %s", metrics)
        return Fitted(run, model, metrics)
