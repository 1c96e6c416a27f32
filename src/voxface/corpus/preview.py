"""A one-page picture of a corpus: for a few identities, face images, the reference mesh, a spectrogram."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..audio.io import load_audio  # noqa: E402
from ..face3d.render import render_mesh  # noqa: E402
from ..runs import atomic  # noqa: E402
from .format import Corpus  # noqa: E402

FACES_PER_ROW = 3


def write_preview(corpus: Corpus, path: str | Path, n_identities: int = 6) -> Path:
    """Save a PNG grid: one row per identity (test and train mixed), columns faces | mesh | spectrogram."""
    chosen = _pick_identities(corpus, n_identities)
    by_identity = {i.identity: i for i in corpus.identities}
    faces = {}
    for f in corpus.faces:
        faces.setdefault(f.identity, []).append(f)
    utterance = {u.identity: u for u in reversed(corpus.utterances)}
    shapes = corpus.reference_shapes(chosen)
    n_faces = min(FACES_PER_ROW, max((len(faces.get(i, [])) for i in chosen), default=0))
    if n_faces == 0:
        n_faces = 1

    fig, axes = plt.subplots(len(chosen), n_faces + 2, figsize=(2.0 * (n_faces + 3), 2.1 * len(chosen)),
                             gridspec_kw={"width_ratios": [1] * (n_faces + 1) + [2.2]}, squeeze=False)
    for row, (identity, shape) in enumerate(zip(chosen, shapes)):
        ident = by_identity[identity]
        for col in range(n_faces):
            ax = axes[row, col]
            if col < len(faces.get(identity, [])):
                ax.imshow(plt.imread(corpus.path(faces[identity][col].image_120)))
            ax.set_axis_off()
        axes[row, 0].set_title(f"{ident.name} ({ident.gender}, {ident.split})", fontsize=8, loc="left")
        mesh = corpus.model.reconstruct(shape)
        axes[row, n_faces].imshow(render_mesh(mesh, corpus.model.triangles, size=160))
        axes[row, n_faces].set_axis_off()
        axes[row, n_faces].set_title("reference mesh", fontsize=8)
        _spectrogram(axes[row, n_faces + 1], corpus, utterance[identity].audio, corpus.manifest["sample_rate"])
    link = corpus.manifest.get("link_strength")
    title = f"{corpus.manifest['name']}: {len(corpus.identities)} identities"
    if corpus.synthetic:
        title += f" (synthetic data, link strength {link})"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return Path(path)


def _pick_identities(corpus: Corpus, n: int) -> list[str]:
    test, train = corpus.identity_ids("test"), corpus.identity_ids("train")
    half = min(len(test), n // 2)
    return test[:half] + train[: n - half]


def _spectrogram(ax, corpus: Corpus, relative_audio: str, sr: int) -> None:
    wave = load_audio(corpus.path(relative_audio), sr=sr)
    ax.specgram(wave, NFFT=512, Fs=sr, noverlap=384, cmap="magma", vmin=-120)
    ax.set_ylim(0, 6000)
    ax.set_title(f"{Path(relative_audio).name}", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("Hz", fontsize=7)
