"""Networks and losses of the supervised method, against the CMP paper's figures (Fig. S-1) and closed
forms; every registered network saved and read back through the one file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxface.errors import VoxfaceError
from voxface.losses.triplet import squared_triplet_loss
from voxface.models import available, create
from voxface.models.regressor import ParameterRegressor
from voxface.models.voice_encoders import CMPVoiceEncoder, SpeakerClassifier


def test_cmp_voice_encoder_matches_spec():
    encoder = create("cmp_voice")
    n_params = sum(p.numel() for p in encoder.parameters())
    # Cross-Modal Perceptionist Fig. S-1's layer plan: ~2.67 M, counted exactly
    conv = 64 * 256 * 3 + 256 * 384 * 3 + 384 * 576 * 3 + 576 * 864 * 3 + (864 * 64 * 3 + 64)
    bn = 2 * (256 + 384 + 576 + 864)
    assert n_params == conv + bn == 2_670_720
    out = encoder.eval()(torch.randn(3, 64, 1000))
    assert out.shape == (3, 64)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    # any length works: 300-frame crops give the same embedding size
    assert encoder(torch.randn(2, 64, 300)).shape == (2, 64)


def test_speaker_classifier_logits():
    clf = SpeakerClassifier(CMPVoiceEncoder(), n_speakers=7)
    assert clf(torch.randn(2, 64, 400)).shape == (2, 7)


def test_unknown_network_names_the_choices():
    with pytest.raises(VoxfaceError, match="cmp_voice"):
        create("no_such_net")
    assert {"cmp_voice", "cmp_regressor"} <= set(available())


def test_regressor_dewhitens_its_output():
    reg = ParameterRegressor(4, 3, dropout=0.0)
    torch.nn.init.zeros_(reg.head.weight)
    torch.nn.init.zeros_(reg.head.bias)
    reg.set_target_stats(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 0.5, 0.5]))
    torch.testing.assert_close(reg(torch.randn(5, 4)), torch.tensor([[1.0, 2.0, 3.0]]).expand(5, 3))


def test_triplet_loss_closed_form():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 0.0]])   # d_pos = 1, 0
    n = torch.tensor([[3.0, 0.0], [0.5, 0.0]])   # d_neg = 9, 0.25
    # max(1 - 9 + 1, 0) = 0 ; max(0 - 0.25 + 1, 0) = 0.75 ; mean = 0.375
    assert squared_triplet_loss(a, p, n, margin=1.0).item() == pytest.approx(0.375)
    assert squared_triplet_loss(a, p, n, margin=0.0).item() == pytest.approx(0.0)


def test_triplet_loss_gradient_pulls_positive_and_pushes_negative():
    a = torch.zeros(1, 2, requires_grad=True)
    p = torch.tensor([[1.0, 0.0]])
    n = torch.tensor([[-0.5, 0.0]])
    squared_triplet_loss(a, p, n).backward()
    # d/da (|a-p|^2 - |a-n|^2) = 2(n - p) -> gradient points away from p: a moves towards p
    torch.testing.assert_close(a.grad, torch.tensor([[2 * (-0.5 - 1.0), 0.0]]))
    assert np.sign(a.grad[0, 0].item()) == -1


SMALL = {
    "cgan_discriminator": dict(width=4), "cgan_generator": dict(width=4), "cmp_face_critic": dict(n_identities=3, base=4),
    "cmp_face_trunk": dict(base=4), "cmp_gaussian_regressor": dict(embed_dim=8, n_shape=5, rank=2),
    "cmp_generator": dict(base=2, norm="batch"), "cmp_regressor": dict(embed_dim=8, n_shape=5, n_expression=2, scale=True),
    "cmp_regressor_ensemble": dict(embed_dim=8, n_shape=5, members=2, rank=1, shared_factor=True),
    "cmp_voice": dict(embed_dim=16), "mobilenet_v2_3dmm": dict(n_shape=5, n_expression=2, width=0.25, last_channel=16),
    "speaker_cnn": dict(n_classes=3, channels=4), "voice_vae": dict(latent_dim=4, width=4),
}
"""Small settings of every registered network (a new network adds its line here)."""


@pytest.mark.parametrize("arch", available())
def test_every_registered_network_is_saved_and_read_back_through_the_one_file_format(arch, tmp_path):
    from voxface.predictors.bundle import read_network, write_bundle

    assert arch in SMALL, f"add small settings of the network {arch!r} to SMALL"
    torch.manual_seed(0)
    network = create(arch, **SMALL[arch])
    for p in network.parameters():  # weights that differ from any fresh initialisation
        p.data.add_(torch.rand_like(p))
    # every kind of file has the same layout; a one-network kind holds any registered network
    write_bundle(tmp_path / "encoder.pt", "voice-encoder", {"network": network}, n_speakers=3)
    again = read_network(tmp_path, "voice-encoder")
    assert type(again) is type(network) and again.arch_kwargs == network.arch_kwargs and not again.training
    state, reread = network.state_dict(), again.state_dict()
    assert state.keys() == reread.keys() and all(torch.equal(state[k], reread[k]) for k in state)
