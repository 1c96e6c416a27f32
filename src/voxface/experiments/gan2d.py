"""``voxface train speaker-cnn`` and ``voxface train gan2d``: voice -> 2D face (biometric-matching paper).

Two settings (``setting``):

- ``paper``: every identity of the corpus is used (the paper's 9 identities with many utterances
  each); the last ``test_per_identity`` utterances of each identity are the test voices, the
  ``val_per_identity`` before them drive the speaker CNN's early stopping, the rest train.
- ``cmp``: the CMP split: identities named F–Z train (``val_per_identity`` utterances of each held
  out for early stopping), the unseen A–E identities are tested with all their utterances.

The speaker run saves ``speaker_cnn.pt`` and ``voice_embeddings.npz``: the 128-d embedding of every
1.28 s mel+delta patch of every utterance of the corpus, with its utterance, identity and role
(train / val / test). Generator runs read the embeddings from there and pair each training voice
with one fixed, randomly chosen face image of its identity (as the paper does). A generator run
saves ``generator.pt`` and ``voice_to_image.pt`` (speaker CNN + generator: speech -> face image, the
file ``voxface serve --image-run`` loads).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from ..runs import atomic
from ..audio.features import mel_delta
from ..audio.voice import prepare_voice
from ..runs.checkpoints import load_tagged, reads_saved_file
from ..runs.config import TrainingSettings, count, positive, random_seed, weight
from ..runs.config import setting as choice_or_range
from ..corpus.format import Corpus
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.embeddings_plot import plot_tsne
from ..inference2d import BUNDLE_FILE as VOICE_TO_IMAGE_FILE
from ..inference2d import VoiceToImage, generator_from_saved, speech_patches
from ..models.speaker_cnn import SpeakerCNN
from ..train.generators2d import GENERATORS, make_generator_module, optimizer_steps_per_batch
from ..runs.trainer import make_trainer, open_run, read_run_config, record_metrics, resume_checkpoint
from ..train.speaker_cnn import SpeakerCNNTraining

log = logging.getLogger(__name__)

SETTINGS = ("paper", "cmp")
MODEL_FILE = "speaker_cnn.pt"
EMBEDDINGS_FILE = "voice_embeddings.npz"
PATCHES_FILE = "voice_patches.npz"
GENERATOR_FILE = "generator.pt"


@dataclass
class SpeakerCNNConfig(TrainingSettings):
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


@dataclass
class Gan2dConfig(TrainingSettings):
    """Generator settings; ``generator`` is vae, cgan or rcgan (configs/gan2d_*.yaml)."""

    corpus: str = "data/synth9"
    speaker_run: str | None = None
    generator: str = choice_or_range("rcgan", choices=GENERATORS)
    epochs: int = count(40)
    batch_size: int = count(32)
    lr: float = positive(1e-3)
    l1_weight: float = weight(100.0)
    width: int = count(64)
    latent_dim: int = count(32)
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
    """mel+delta patches of every utterance, cached in ``cache`` (npz).

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
    atomic.write_npz(cache, **out, n_utterances=np.array([len(corpus.utterances)]))
    return out


def _loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


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
    steps_per_epoch = -(-len(train[0]) // config.batch_size)
    trainer = make_trainer(run, config.max_epochs * steps_per_epoch, steps_per_epoch, progress, config.device,
                           config.precision)
    trainer.callbacks.append(EarlyStopping("val/loss", patience=config.patience, mode="min"))
    trainer.fit(module, _loader(*train, config.batch_size, True, config.seed),
                _loader(*val, 256, False, config.seed), ckpt_path=resume_checkpoint(run))
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


def train_speaker_cnn(config: SpeakerCNNConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Train the speaker CNN on the setting's training voices; embed every patch; t-SNE of test voices."""
    run = open_run(run_dir, config, "speaker-cnn")
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
    with atomic.atomic_path(run / MODEL_FILE) as tmp:
        torch.save({"format": "voxface-speaker-cnn", "classes": [str(c) for c in classes], "channels": config.channels,
                    "state_dict": model.state_dict()}, tmp)
    atomic.write_npz(run / EMBEDDINGS_FILE, embedding=embeddings, utterance=data["utterance"],
                     identity=identity, role=role)
    plot_tsne(run / "voice_tsne.png", embeddings[test], identity[test], "test voice embeddings (t-SNE)", config.seed)
    metrics.update(classes=len(classes), train_patches=int(train.sum()), test_patches=int(test.sum()))
    metrics = record_metrics(run / "metrics.json", metrics, trainer)
    log.info("speaker CNN: %s", metrics)
    return metrics


# ---------------------------------------------------------------- generators

def load_voice_embeddings(speaker_run: str | Path) -> dict[str, np.ndarray]:
    """``embedding`` (P, 128), ``utterance``, ``identity``, ``role`` (P,) saved by a speaker-CNN run."""
    path = Path(speaker_run) / EMBEDDINGS_FILE
    if not path.is_file():
        raise VoxfaceError(f"no voice embeddings at {path}; run `voxface train speaker-cnn --run {speaker_run}` first")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_face_images(corpus: Corpus, faces: list) -> np.ndarray:
    """(N, 64, 64, 3) float32 in [0, 1] of the corpus faces' 64×64 crops."""
    return np.stack([np.asarray(Image.open(corpus.path(f.image_64)).convert("RGB"), dtype=np.float32) / 255.0
                     for f in faces])


def target_faces(corpus: Corpus, seed: int) -> dict[str, int]:
    """Each identity's training target: one face (index into corpus.faces) chosen at random with ``seed``."""
    rows: dict[str, list[int]] = {}
    for n, f in enumerate(corpus.faces):
        rows.setdefault(f.identity, []).append(n)
    rng = np.random.default_rng(seed)
    return {ident: int(rng.choice(r)) for ident, r in sorted(rows.items())}


def train_gan2d(config: Gan2dConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Train ``config.generator`` on (training voice embedding, target face of its identity) pairs."""
    if config.generator not in GENERATORS:
        raise VoxfaceError(f"unknown generator {config.generator!r}; choose one of {GENERATORS}")
    if not config.speaker_run:
        raise VoxfaceError("gan2d needs a trained speaker CNN: pass --speaker-run RUN (voxface train speaker-cnn)")
    run = open_run(run_dir, config, "gan2d")
    corpus = check_corpus(config.corpus)
    voices = load_voice_embeddings(config.speaker_run)
    if read_run_config(config.speaker_run)["corpus"] != config.corpus:
        log.warning("speaker run %s was trained on another corpus path", config.speaker_run)
    train = np.isin(voices["role"], ["train", "val"])
    targets = target_faces(corpus, config.seed)
    missing = sorted(set(voices["identity"][train]) - set(targets))
    if missing:
        raise VoxfaceError(f"identities {missing[:5]} of {config.corpus} have no face image")
    images = load_face_images(corpus, corpus.faces)
    target_of = np.array([targets[i] for i in voices["identity"][train]])
    x = voices["embedding"][train].astype(np.float32)
    y = np.ascontiguousarray(images[target_of].transpose(0, 3, 1, 2))
    L.seed_everything(config.seed, workers=True)
    module = make_generator_module(config.generator, config.lr, config.l1_weight, config.width, config.latent_dim)
    batches = -(-len(x) // config.batch_size)
    steps = config.epochs * batches * optimizer_steps_per_batch(config.generator)
    trainer = make_trainer(run, steps, batches * optimizer_steps_per_batch(config.generator), progress,
                           config.device, config.precision)
    resume = resume_checkpoint(run)
    start = time.perf_counter()
    trainer.fit(module, _loader(x, y, config.batch_size, True, config.seed), ckpt_path=resume)
    seconds = time.perf_counter() - start
    generator = module.generator.cpu().eval()
    save_generator(run / GENERATOR_FILE, generator, config)
    VoiceToImage(load_speaker_cnn(config.speaker_run), generator,
                 generator_settings(config)).save(run / VOICE_TO_IMAGE_FILE)
    metrics = {"generator": config.generator, "training_pairs": len(x), "epochs": config.epochs,
               "train_seconds": seconds, "resumed": resume is not None}
    return record_metrics(run / "train_summary.json", metrics, trainer)


def generator_settings(config: Gan2dConfig) -> dict:
    """What rebuilds a run's generator network (see :func:`voxface.inference2d.generator_from_saved`)."""
    return {"generator": config.generator, "width": config.width, "latent_dim": config.latent_dim}


def save_generator(path: Path, generator: torch.nn.Module, config: Gan2dConfig) -> None:
    with atomic.atomic_path(path) as tmp:
        torch.save({"format": "voxface-generator2d", **generator_settings(config),
                    "state_dict": generator.state_dict()}, tmp)


@reads_saved_file
def load_generator(run: str | Path) -> torch.nn.Module:
    """The trained generator of a gan2d run, in eval mode; ``generate(voice (B, 128)) -> (B, 3, 64, 64)``."""
    saved, _ = load_tagged(Path(run) / GENERATOR_FILE, GENERATOR_FILE, "voxface-generator2d", "trained generator",
                           f"run `voxface train gan2d --run {run}` first")
    return generator_from_saved(saved)


@reads_saved_file
def load_speaker_cnn(run: str | Path) -> SpeakerCNN:
    """The speaker CNN of a ``voxface train speaker-cnn`` run, in eval mode."""
    saved, _ = load_tagged(Path(run) / MODEL_FILE, MODEL_FILE, "voxface-speaker-cnn", "trained speaker CNN",
                           f"run `voxface train speaker-cnn --run {run}` first")
    model = SpeakerCNN(len(saved["classes"]), channels=saved["channels"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


# ---------------------------------------------------------------- real voices

def train_speaker_cnn_fsdd(config: SpeakerCNNConfig, run_dir: str | Path, progress: bool = True) -> dict:
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
    run = open_run(run_dir, config, "speaker-cnn-fsdd")
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
    metrics = record_metrics(run / "metrics.json", metrics, trainer)
    log.info("FSDD speaker CNN: %s", metrics)
    return metrics
