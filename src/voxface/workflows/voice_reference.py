"""``voxface voice-reference``: give a predictor a reference of the voices it should call typical.

``voxface train supervised`` stores the reference of its own training voices. A model that does not
carry one (an imported release: it ships no training voices; a run trained before references
existed) can be given one fitted on recordings its user trusts to be like the training data (for
the CMP release: real speech, e.g. VoxCeleb clips), or on a corpus's training identities.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio.duration import PREDICT_MAX_MINUTES
from ..corpus.data import utterance_set
from ..corpus.validate import check_corpus
from ..errors import VoxfaceError
from ..evaluate.in_distribution import VoiceReference
from ..predictors.voice_to_3d import BUNDLE_FILE, FEATURES, VoiceTo3D
from .predict import read_voice

log = logging.getLogger(__name__)

MIN_RECORDINGS = 10


def fit_voice_reference(run_or_file: str | Path, corpus: str | Path | None = None,
                        audio: list[str] | None = None, progress: bool = True,
                        max_minutes: float | None = PREDICT_MAX_MINUTES) -> VoiceReference:
    """Fit a reference on a corpus's training identities or on recordings, and store it in the
    predictor file (rewritten atomically).

    Recordings are grouped by their folder (one speaker per folder); when they all share one
    folder, each recording is its own group. Unusable recordings, and recordings longer than
    ``max_minutes``, are skipped with a log line.

    Raises:
        VoxfaceError: neither or both sources given, fewer than ``MIN_RECORDINGS`` usable
            recordings, fewer than 2 groups, or a corpus of another morphable model.
    """
    if (corpus is None) == (not audio):
        raise VoxfaceError("give either --corpus CORPUS or --audio FILE... (one of them)")
    path = Path(run_or_file)
    path = path / BUNDLE_FILE if path.is_dir() else path
    predictor = VoiceTo3D.load(path)
    if corpus is not None:
        features, groups, source = _corpus_voices(predictor, corpus, progress)
    else:
        features, groups, source = _recorded_voices(predictor, audio, progress, max_minutes)
    if len(features) < MIN_RECORDINGS or len(set(groups)) < 2:
        raise VoxfaceError(f"{len(features)} usable recordings of {len(set(groups))} group(s); a reference needs "
                           f"at least {MIN_RECORDINGS} recordings in 2 folders (speakers)")
    predictor.reference = predictor.fit_reference(features, np.asarray(groups), source)
    predictor.save(path)
    log.info("voice reference of %s: %s", path, source)
    return predictor.reference


def _corpus_voices(predictor: VoiceTo3D, corpus_dir, progress: bool):
    corpus = check_corpus(corpus_dir)
    predictor.check_model(corpus.model)
    ids = corpus.identity_ids("train")
    data = utterance_set(corpus, ids, FEATURES[predictor.backbone], progress=progress)
    groups = [ids[i] for i in data.identity_index]
    return data.features, groups, f"{len(data.features)} utterances of {len(ids)} training identities of {corpus.root}"


def _recorded_voices(predictor: VoiceTo3D, audio: list[str], progress: bool, max_minutes: float | None):
    features, folders = [], []
    for file in tqdm(audio, desc="voice reference", disable=not progress, unit="file"):
        try:
            features += predictor.voice_features([read_voice(file, max_minutes)])
        except VoxfaceError as e:
            log.info("skipped %s", e)
            continue
        folders.append(str(Path(file).absolute().parent))
    groups = folders if len(set(folders)) > 1 else [str(i) for i in range(len(folders))]
    return features, groups, f"{len(features)} recordings in {len(set(folders))} folder(s) given by the user"
