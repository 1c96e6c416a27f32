"""Shared fixtures: a tiny synthetic corpus generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxface.paths import shared_data_dir

TINY = dict(identities=12, utterances=2, images=1, seed=3, workers=1, duration_s=(1.2, 1.6))


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory) -> Path:
    """A 12-identity synthetic corpus (2 utterances, 1 image each), shared read-only by tests."""
    from voxface.corpus.synthetic import SynthConfig, generate_corpus

    out = tmp_path_factory.mktemp("tiny") / "corpus"
    generate_corpus(out, SynthConfig(**TINY), progress=False)
    return out


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared reference data folder, or skip when it is absent (a user's fresh clone)."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared reference data not found at {root} (set VOXFACE_SHARED_DATA)")
    return root


@pytest.fixture(scope="session")
def predictor_file(tmp_path_factory, tiny_corpus_dir) -> Path:
    """An untrained (seeded) CMP predictor on the built-in model, with a synthetic provenance, the
    reference of the tiny corpus's voices and its population: for tests of what surrounds a
    prediction (files, refusals, warnings, the page), not of its quality."""
    return _untrained_predictor(tmp_path_factory.mktemp("predictor") / "predictor.pt", tiny_corpus_dir, "none")


@pytest.fixture(scope="session")
def gaussian_predictor_file(tmp_path_factory, tiny_corpus_dir) -> Path:
    """The same with an (untrained) Gaussian head: a predictive distribution over the face."""
    return _untrained_predictor(tmp_path_factory.mktemp("gaussian") / "predictor.pt", tiny_corpus_dir, "gaussian")


def _untrained_predictor(path: Path, corpus_dir: Path, uncertainty: str) -> Path:
    import numpy as np
    import torch

    from voxface.audio.voice import prepare_voice
    from voxface.corpus.format import Corpus
    from voxface.evaluate.population import FacePopulation
    from voxface.models.regressor import create_regressor
    from voxface.models.voice_encoders import CMPVoiceEncoder
    from voxface.predictors.voice_to_3d import VoiceTo3D

    torch.manual_seed(0)
    corpus = Corpus(corpus_dir)
    model = corpus.model
    encoder = CMPVoiceEncoder().eval()
    ids = corpus.identity_ids()
    population = FacePopulation.fit(model, corpus.reference_shapes(ids), np.array([i.gender for i in corpus.identities]),
                                    n_types=3)
    predictor = VoiceTo3D("cmp", encoder, create_regressor(uncertainty, encoder.embed_dim, model.n_shape), model,
                          provenance={"trained_on": "the synthetic voices of the tiny test corpus", "synthetic": True},
                          population=population)
    voices = sorted((corpus_dir / "audio").glob("*/*.wav"))
    features = predictor.voice_features([prepare_voice(v) for v in voices])
    predictor.reference = predictor.fit_reference(features, np.array([v.parent.name for v in voices]), "tiny corpus")
    predictor.save(path)
    return path
