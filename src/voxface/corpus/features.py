"""Per-utterance voice features cached inside a corpus (``features/<kind>/<identity>/<utt>.npy``).

Kinds:
- ``cmp_logmel``: CMP's 64-bin log-mel, float32 (T, 64), T >= 1000 (the CMP release's layout);
- ``resemblyzer``: the pretrained Resemblyzer utterance embedding, float32 (256,).

Files are written atomically, so an interrupted run resumes where it stopped; a cached file that is
not a complete ``.npy`` (truncated, or damaged since) is computed again.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import VoxfaceError
from ..runs import atomic
from ..runs.integrity import npy_problem
from ..runs.reading import load_array
from .format import Corpus, Utterance

log = logging.getLogger(__name__)

KINDS = ("cmp_logmel", "resemblyzer")


def feature_path(corpus: Corpus, utterance: Utterance, kind: str) -> Path:
    return corpus.root / "features" / kind / utterance.identity / f"{utterance.utterance}.npy"


def ensure_features(corpus: Corpus, utterances: list[Utterance], kind: str = "cmp_logmel",
                    workers: int = 1, progress: bool = True) -> list[Path]:
    """Compute the missing ``kind`` features of ``utterances``; return their paths in order."""
    if kind not in KINDS:
        raise VoxfaceError(f"unknown feature kind {kind!r}; choose one of {KINDS}")
    paths = [feature_path(corpus, u, kind) for u in utterances]
    todo = [(str(corpus.path(u.audio)), str(p)) for u, p in zip(utterances, paths) if _needs_computing(p, u)]
    if todo:
        log.info("computing %s features for %d utterances", kind, len(todo))
        bar = tqdm(total=len(todo), desc=f"{kind} features", unit="utt", disable=not progress)
        if kind == "resemblyzer":
            _compute_resemblyzer(todo, bar)
        elif workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for _ in pool.map(_compute_cmp_logmel, todo, chunksize=8):
                    bar.update()
        else:
            for item in todo:
                _compute_cmp_logmel(item)
                bar.update()
        bar.close()
    return paths


def _needs_computing(path: Path, utterance: Utterance) -> bool:
    problem = npy_problem(path)
    if problem is None:
        return False
    if problem != "missing":
        if not utterance.audio:
            raise VoxfaceError(f"cached feature {path} is damaged ({problem}) and its utterance has no audio to "
                               "compute it from; import the features again")
        log.warning("cached feature %s is damaged (%s); it is computed again", path, problem)
    return True


def damaged_features(corpus: Corpus) -> list[str]:
    """The cached feature files of ``corpus`` (any kind) that are not complete ``.npy`` files of finite numbers, as
    "path: what is wrong" (paths relative to the corpus)."""
    found = []
    for path in sorted((corpus.root / "features").glob("*/*/*.npy")):
        problem = npy_problem(path, values=True)
        if problem:
            found.append(f"{path.relative_to(corpus.root)}: {problem}")
    return found


def load_features(paths: list[Path]) -> list[np.ndarray]:
    """Cached features, one float32 array per path; VoxfaceError naming a file that holds NaN or infinity."""
    return [load_array(p, "cached feature", finite=True) for p in paths]


def _compute_cmp_logmel(item: tuple[str, str]) -> None:
    from ..audio.features import cmp_logmel
    from ..audio.voice import prepare_voice

    audio, out = item
    atomic.write_npy(out, cmp_logmel(prepare_voice(audio)).astype(np.float32))


def _compute_resemblyzer(items: list[tuple[str, str]], bar, batch: int = 16) -> None:
    from ..audio.speaker_encoder import ResemblyzerEncoder
    from ..audio.voice import prepare_voice

    encoder = ResemblyzerEncoder()
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        embeddings = encoder.embed([prepare_voice(audio) for audio, _ in chunk])
        for (_, out), e in zip(chunk, embeddings):
            atomic.write_npy(out, e.astype(np.float32))
        bar.update(len(chunk))
