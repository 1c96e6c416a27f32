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
def predictor_file(tmp_path_factory) -> Path:
    """An untrained (seeded) CMP predictor on the built-in model, for tests of what surrounds a
    prediction (files, refusals, the page), not of its quality."""
    import torch

    from voxface.face3d.loading import load_morphable_model
    from voxface.inference import VoiceTo3D
    from voxface.models.regressor import ParameterRegressor
    from voxface.models.voice_encoders import CMPVoiceEncoder

    torch.manual_seed(0)
    model = load_morphable_model("builtin")
    encoder = CMPVoiceEncoder().eval()
    path = tmp_path_factory.mktemp("predictor") / "predictor.pt"
    VoiceTo3D("cmp", encoder, ParameterRegressor(encoder.embed_dim, model.n_shape), model).save(path)
    return path
