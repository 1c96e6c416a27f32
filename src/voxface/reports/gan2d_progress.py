"""How a gan2d run is learning: its generator scored on held-out voices during training, and the curve.

A :class:`HeldOutProbe` is built once per run from the speaker run's test voice patches (a few per
identity: dlib is the slow part) and the test identities' real faces; every ``eval_every`` epochs the
run's :class:`voxface.runs.trainer.PeriodicEvaluation` calls :meth:`HeldOutProbe.score`, whose
scores are ``evaluate-2d``'s own (:func:`voxface.reports.voice_to_image.face_scores`) at the τ
``evaluate-2d`` grid-searches by default, beside the verifier's ceiling at that τ. They go to the
run's ``logs/metrics.csv`` and TensorBoard as ``eval/...``; :func:`plot_learning_curve` draws them
from ``metrics.csv`` into ``report/learning_curve.png``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..corpus.data import target_faces  # noqa: E402
from ..corpus.format import Corpus  # noqa: E402
from ..errors import VoxfaceError  # noqa: E402
from ..evaluate.image_metrics import image_quality_per_image  # noqa: E402
from ..evaluate.verification import (  # noqa: E402
    calibrate_threshold,
    distances_to_identities,
    pair_distances,
    same_identity_rate,
)
from ..runs.placement import OnDevice  # noqa: E402
from ..vision.face_embedding import FaceEmbedder  # noqa: E402
from .figures import save_figure  # noqa: E402
from .voice_to_image import face_images, face_scores, generate_faces, test_patches  # noqa: E402

log = logging.getLogger(__name__)

PREFIX = "eval/"
DLIB_TAU = 0.6
"""τ when the real faces cannot calibrate one (dlib's own same-person rule)."""
CURVE_FILE = "learning_curve.png"
RATES = {"identity_accuracy": "identity accuracy (τ)", "real_identity_accuracy": "ceiling: real vs real (τ)",
         "matching_1v2": "1:2 matching", "recall_at_1": "R@1", "face_found": "face found (dlib)"}
"""The scores in [0, 1] a curve shows, and their labels; beside them PSNR (dB) and SSIM."""


@dataclass
class HeldOutProbe:
    """Held-out voices and what their faces are scored against.

    ``voices`` (Q, 128) float32 speaker-CNN embeddings of test patches, ``identity`` (Q,) theirs,
    ``targets`` (Q, 64, 64, 3) float32 in [0, 1] the target face of each voice's identity;
    ``real_emb`` (G, 128), ``real_labels`` (G,) the test identities' real faces; ``identities`` (K,),
    ``genders`` (K,); ``tau`` and ``ceiling`` (the real faces' own identity accuracy at τ).
    """

    voices: np.ndarray
    identity: np.ndarray
    targets: np.ndarray
    real_emb: np.ndarray
    real_labels: np.ndarray
    identities: list
    genders: np.ndarray
    tau: float
    ceiling: float
    embedder: FaceEmbedder

    def score(self, generator) -> dict[str, float]:
        """The generator's faces for the probe's voices -> {score name: value} (names of :data:`RATES`,
        ``PSNR``, ``SSIM``)."""
        device = next(generator.parameters()).device
        faces = generate_faces(generator if device.type == "cpu" else OnDevice(generator, device), self.voices)
        emb, found = self.embedder.embed(faces)
        d = distances_to_identities(emb, self.real_emb, self.real_labels, self.identities)
        true_col = np.array([self.identities.index(i) for i in self.identity])
        quality = image_quality_per_image(self.targets, faces)
        s = face_scores(emb, found, self.identity, self.real_emb, self.real_labels, self.tau, d, true_col,
                        self.genders, quality)
        return {"identity_accuracy": s["identity_accuracy"], "real_identity_accuracy": self.ceiling,
                "matching_1v2": s["matching_1v2"], "recall_at_1": s["recall_at"]["1"],
                "face_found": s["generated_face_detection_rate"], "PSNR": s["image_quality"]["PSNR"],
                "SSIM": s["image_quality"]["SSIM"]}


def held_out_probe(corpus: Corpus, voices: dict[str, np.ndarray], seed: int, per_identity: int,
                   embedder: FaceEmbedder) -> HeldOutProbe:
    """The probe of a gan2d run: ``per_identity`` test patches of each identity (spread over its test
    utterances, as ``evaluate-2d`` picks them) from ``voices`` (:func:`load_voice_embeddings`), the
    run's target faces (``seed``), and τ grid-searched on the test identities' real faces (dlib's 0.6
    when no identity has two of them; the ceiling is then NaN)."""
    picked = test_patches(voices["role"], voices["identity"], voices["utterance"], per_identity)
    if not len(picked):
        raise VoxfaceError("the speaker run has no test voices to evaluate the generator on; set eval_every=0")
    identity = voices["identity"][picked]
    identities = sorted(set(identity.tolist()))
    real = [f for f in corpus.faces if f.identity in identities]
    real_labels = np.array([f.identity for f in real])
    real_emb, _ = embedder.embed(face_images(corpus, real))
    distances, same = pair_distances(real_emb, real_labels)
    if same.any() and not same.all():
        tau = calibrate_threshold(distances, same)[0].tau
    else:
        tau = DLIB_TAU
        log.warning("the test identities' real faces cannot calibrate tau (no identity with two faces); "
                    "the held-out evaluation uses dlib's %.2f", tau)
    targets = target_faces(corpus, seed)
    genders = {i.identity: i.gender for i in corpus.identities}
    return HeldOutProbe(voices["embedding"][picked].astype(np.float32), identity,
                        face_images(corpus, [corpus.faces[targets[i]] for i in identity]), real_emb, real_labels,
                        identities, np.array([genders[i] for i in identities]), tau,
                        same_identity_rate(real_emb, real_labels, tau), embedder)


def logged_scores(metrics_csv: str | Path, prefix: str = PREFIX) -> dict[str, np.ndarray]:
    """The rows of a run's ``metrics.csv`` that hold ``prefix`` scores: {"epoch": (R,), name: (R,)}
    with the prefix stripped from the names (NaN where a row lacks one)."""
    with open(metrics_csv, newline="") as file:
        rows = [r for r in csv.DictReader(file) if any(k.startswith(prefix) and v for k, v in r.items())]
    names = sorted({k[len(prefix):] for r in rows for k in r if k.startswith(prefix)})
    out = {"epoch": np.array([float(r["epoch"]) for r in rows])}
    out.update({n: np.array([float(r.get(prefix + n) or "nan") for r in rows]) for n in names})
    return out


def plot_learning_curve(path: str | Path, metrics_csv: str | Path, title: str) -> Path:
    """The held-out scores of a run against epochs (left: the rates of :data:`RATES`; right: PSNR,
    SSIM) from its ``metrics.csv``; return the PNG's path."""
    scores = logged_scores(metrics_csv)
    fig, (rates, quality) = plt.subplots(1, 2, figsize=(10, 4))
    for name, label in RATES.items():
        if name in scores:
            style = dict(color="k", linestyle="--", linewidth=1) if name == "real_identity_accuracy" else {}
            rates.plot(scores["epoch"], scores[name], marker="." if len(scores["epoch"]) < 30 else None,
                       label=label, **style)
    rates.set_ylim(0, 1.02)
    rates.set_xlabel("epoch")
    rates.legend(fontsize=7, loc="lower right")
    rates.grid(alpha=0.3)
    rates.set_title(title)
    if "PSNR" in scores:
        quality.plot(scores["epoch"], scores["PSNR"], color="tab:blue", label="PSNR (dB)")
        quality.set_ylabel("PSNR (dB)", color="tab:blue")
    if "SSIM" in scores:
        ssim = quality.twinx()
        ssim.plot(scores["epoch"], scores["SSIM"], color="tab:red", label="SSIM")
        ssim.set_ylabel("SSIM", color="tab:red")
    quality.set_xlabel("epoch")
    quality.set_title("image quality against the target face")
    quality.grid(alpha=0.3)
    return save_figure(fig, path)


COMPARED_SCORES = {"PSNR": "PSNR (dB)", "face_found": "face found (dlib)", "recall_at_1": "R@1"}
"""The held-out scores :func:`plot_compared_curves` draws, one panel each."""


def plot_compared_curves(path: str | Path, runs: dict[str, str | Path], title: str) -> Path:
    """Several runs' held-out PSNR, face-found rate and R@1 against epochs, one line per run
    (``runs``: label -> the run's ``metrics.csv``); return the PNG's path."""
    fig, panels = plt.subplots(1, len(COMPARED_SCORES), figsize=(4.2 * len(COMPARED_SCORES), 3.8))
    for label, metrics_csv in runs.items():
        scores = logged_scores(metrics_csv)
        for panel, name in zip(panels, COMPARED_SCORES):
            if name in scores:
                panel.plot(scores["epoch"] + 1, scores[name], marker=".", label=label)
    for panel, (name, label) in zip(panels, COMPARED_SCORES.items()):
        panel.set_xlabel("epoch")
        panel.set_title(label)
        panel.grid(alpha=0.3)
        if name != "PSNR":
            panel.set_ylim(-0.02, 1.02)
    panels[0].legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)
