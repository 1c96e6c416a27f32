"""Figures of embeddings: t-SNE maps coloured by identity, and verification scores against τ (paper Fig. 2, 4)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..runs import atomic  # noqa: E402


def tsne_2d(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) t-SNE coordinates (scikit-learn, PCA initialisation, perplexity ≤ (N − 1) / 3)."""
    from sklearn.manifold import TSNE

    e = np.asarray(embeddings, dtype=np.float64)
    perplexity = float(max(1.0, min(30.0, (len(e) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(e)


def plot_tsne(path: str | Path, embeddings: np.ndarray, labels, title: str, seed: int = 0) -> Path:
    """Write a t-SNE scatter of ``embeddings`` (N, D) coloured by ``labels`` (N,) to a PNG; return its path."""
    labels = np.asarray(labels)
    xy = tsne_2d(embeddings, seed)
    names = list(dict.fromkeys(labels.tolist()))
    colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(6, 5))
    for k, name in enumerate(names):
        rows = labels == name
        ax.scatter(xy[rows, 0], xy[rows, 1], s=10, color=colours(k % colours.N),
                   label=str(name) if len(names) <= 20 else None)
    if len(names) <= 20:
        ax.legend(fontsize=6, markerscale=1.5, loc="best", ncol=2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, path)


def plot_threshold_sweep(path: str | Path, sweep: dict[str, np.ndarray], tau: float, title: str) -> Path:
    """Accuracy, balanced accuracy and F1 against τ, with the chosen τ marked (paper Fig. 4)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("accuracy", "accuracy (all pairs)"), ("balanced_accuracy", "balanced accuracy"),
                       ("f1", "F1 (same identity)")):
        ax.plot(sweep["tau"], sweep[key], label=label)
    ax.axvline(tau, color="k", linestyle="--", linewidth=1, label=f"τ = {tau:.2f}")
    ax.set_xlabel("τ (L2 distance threshold)")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (PNG, atomically) and close it; return the path."""
    path = Path(path)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path
