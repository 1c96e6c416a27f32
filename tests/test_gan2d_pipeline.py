"""Voice -> 2D face: network shapes, the utterance split, and the whole flow on the tiny corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from voxface.cli import main
from voxface.corpus.format import Corpus
from voxface.errors import VoxfaceError
from voxface.methods.speaker_cnn import utterance_roles
from voxface.models.biometric_gan2d import ConditionalDiscriminator, ConditionalGenerator, VoiceVAE
from voxface.models.speaker_cnn import SpeakerCNN


def test_network_shapes():
    x = torch.randn(3, 2, 60, 41)
    cnn = SpeakerCNN(9, channels=8).eval()
    assert cnn(x).shape == (3, 9) and cnn.embed(x).shape == (3, 128)
    v = torch.rand(3, 128)
    for g in (VoiceVAE(width=8), ConditionalGenerator(width=8).eval()):
        img = g.generate(v).detach()
        assert img.shape == (3, 3, 64, 64) and 0 <= float(img.min()) and float(img.max()) <= 1
    assert ConditionalDiscriminator(width=8)(torch.rand(3, 3, 64, 64), v).shape == (3,)


def test_utterance_roles(tiny_corpus_dir):
    corpus = Corpus(tiny_corpus_dir)
    roles = utterance_roles(corpus, "cmp", 0, 1)
    split = {i.identity: i.split for i in corpus.identities}
    for u, r in zip(corpus.utterances, roles):
        assert (r == "test") == (split[u.identity] == "test")
    assert {"train", "val", "test"} == set(roles)
    paper = utterance_roles(corpus, "paper", 1, 0)
    assert paper.count("test") == len(corpus.identities) and paper.count("train") == len(corpus.identities)
    with pytest.raises(VoxfaceError, match="needs more than"):
        utterance_roles(corpus, "paper", 1, 1)


@pytest.mark.slow
def test_pipeline_tiny(tiny_corpus_dir, tmp_path):
    corpus = str(tiny_corpus_dir)
    speaker = tmp_path / "speaker"
    common = ["--corpus", corpus, "--quiet"]
    assert main(["train", "speaker-cnn", "--run", str(speaker), *common, "--set", "setting=cmp", "--set",
                 "test_per_identity=0", "--set", "val_per_identity=1", "--set", "max_epochs=1",
                 "--set", "channels=8"]) == 0
    saved = np.load(speaker / "voice_embeddings.npz")
    assert saved["embedding"].shape[1] == 128 and (saved["role"] == "test").any()
    assert (speaker / "voice_tsne.png").is_file()
    runs = []
    for generator in ("vae", "rcgan"):
        run = tmp_path / generator
        assert main(["train", "gan2d", "--run", str(run), "--speaker-run", str(speaker), *common,
                     "--set", f"generator={generator}", "--set", "epochs=1", "--set", "width=8"]) == 0
        runs.append(str(run))
        # the held-out evaluation ran after the last epoch: its columns, its row in metrics.json, the curve
        held_out = json.loads((run / "metrics.json").read_text())["training"]["held_out"]
        assert held_out["epoch"] == 1 and 0 <= held_out["eval/recall_at_1"] <= 1
        assert "eval/face_found" in (run / "logs" / "metrics.csv").read_text().splitlines()[0]
        assert (run / "report" / "learning_curve.png").is_file()
    assert main(["evaluate-2d", *runs, "--out", str(tmp_path / "cmp"), "--per-identity", "2", "--tau", "0.55", "--quiet"]) == 0
    summary = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    for m in summary["runs"].values():
        assert 0 <= m["identity_accuracy"] <= 1 and set(m["recall_at"]) == {"1", "5", "10"}
        assert m["image_quality"]["SSIM"] <= 1
        # every metric over the test identities with its interval, against its baseline with a p-value
        stats = m["statistics"]
        one_to_two = stats["matching_1v2"]
        assert one_to_two["mean"]["low"] <= one_to_two["mean"]["estimate"] <= one_to_two["mean"]["high"]
        assert 0 < one_to_two["vs"]["chance"]["p_value"] <= 1
        assert set(stats["identity_accuracy"]["vs"]) == {"real faces of other identities"}
        assert stats["recall_at_1"]["mean"]["estimate"] == pytest.approx(m["recall_at"]["1"])  # equal counts
        assert stats["SSIM"]["vs"] == {}
    between = summary["between_runs"]["matching_1v2"]
    assert set(between) == {"vae", "rcgan"} and "rcgan" in between["vae"]
    report = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "95% bootstrap intervals over the test identities" in report and "significant at 5%" in report
    assert (tmp_path / "vae" / "report" / "qualitative.png").is_file()
    # a gan2d run folder is refused by another kind's evaluation and vice versa
    assert main(["evaluate-2d", str(speaker), "--quiet"]) == 2
    # voice_to_image.pt (what `serve --image-run` loads) turns a recording into the image the saved patch
    # embeddings of that recording give through the run's generator
    from voxface.methods.gan2d import GENERATOR
    from voxface.predictors.bundle import read_network
    from voxface.predictors.voice_to_image import VoiceToImage

    image_model = VoiceToImage.load(tmp_path / "vae")
    assert image_model.provenance["synthetic"] and "synthetic voices" in image_model.provenance["trained_on"]
    first = saved["utterance"] == 0
    voice = torch.from_numpy(saved["embedding"][first].mean(0, keepdims=True))
    expected = read_network(tmp_path / "vae", GENERATOR).generate(voice)[0].permute(1, 2, 0).numpy() * 255
    image = image_model.image(Corpus(tiny_corpus_dir).path(Corpus(tiny_corpus_dir).utterances[0].audio))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(float) - expected).max() <= 1.0


def test_configs_build():
    """Every gan2d config builds its dataclass; the paper config has the 128 speaker-CNN
    kernels of the biometric-matching paper (Sec. III-A)."""
    from pathlib import Path

    from voxface.methods.gan2d import Config as Gan2dConfig
    from voxface.methods.speaker_cnn import Config as SpeakerCNNConfig
    from voxface.runs.config import build, load_yaml

    configs = Path(__file__).parents[1] / "configs"
    assert build(SpeakerCNNConfig, load_yaml(configs / "gan2d_paper.yaml")).channels == 128
    assert build(SpeakerCNNConfig, load_yaml(configs / "gan2d_paper_fast.yaml")).channels == 64
    for name in ("gan2d_cmp_split.yaml", "gan2d_fsdd_fast.yaml"):
        build(SpeakerCNNConfig, load_yaml(configs / name))
    paper = build(Gan2dConfig, load_yaml(configs / "gan2d_paper_generator.yaml"))
    assert paper.batch_size == 32 and paper.epochs == 5000


def test_fsdd_needs_recordings(tmp_path, capsys):
    assert main(["train", "speaker-cnn-fsdd", "--corpus", str(tmp_path), "--run", str(tmp_path / "run"), "--quiet"]) == 2
    assert "no FSDD recordings" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_statistics_table_says_what_is_unbounded_and_what_has_no_baseline():
    from voxface.evaluate.statistics import metric_statistics
    from voxface.reports.voice_to_image import statistics_markdown

    accuracy = np.array([0.2, 0.0, 0.1, 0.0])
    stats = {"identity_accuracy": metric_statistics(accuracy, {"others": np.array([0.0, 0.0, 0.05, 0.0]),
                                                                "nothing": np.zeros(4)}),
             "matching_1v2": metric_statistics(np.array([0.9, 0.8, 0.95, 0.85]), {"chance": 0.5}),
             "SSIM": metric_statistics(np.array([0.3, 0.4, 0.35, 0.5]), {}),
             "recall_at_10": None}
    table = "\n".join(statistics_markdown({"vae": {"statistics": stats}}))
    assert "| vae | identity_accuracy | 0.075 [0, 0.15] | others | +500.0% [+100.0%, +∞] |" in table
    assert "| nothing | — (baseline 0) |" in table
    assert "| vae | matching_1v2 | 0.875 [" in table and "| chance | +75.0% [" in table
    assert "| vae | SSIM | 0.3875 [" in table and "| vae | recall_at_10 | — (fewer than two identities" in table
