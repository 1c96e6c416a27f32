"""Issue 22, items 4 and 5: weights that are not numbers, and checkpoints that claim gigabytes.

Loaded weights and cached features are checked for NaN/inf (``validate`` reports the features); a
prediction that is not finite is an error, never a file. A torch archive whose entries declare more
bytes than the file holds (compressed zeros, or an edited header) is refused before any tensor is
materialised."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest
import torch

from voxface.errors import VoxfaceError
from voxface.runs.checkpoints import load_tagged, load_weights

ARGS = ("thing.pt", "voxface-thing", "the thing", "train one")


def _nan_copy(saved):
    if isinstance(saved, torch.Tensor):
        return torch.full_like(saved, float("nan")) if saved.is_floating_point() else saved
    if isinstance(saved, dict):
        return {k: _nan_copy(v) for k, v in saved.items()}
    if isinstance(saved, (list, tuple)):
        return type(saved)(_nan_copy(v) for v in saved)
    return saved


def test_weights_that_are_not_finite_are_refused_naming_the_file(tmp_path):
    torch.save({"format": "voxface-thing", "net": {"w": torch.tensor([1.0, float("inf")])}}, tmp_path / "thing.pt")
    with pytest.raises(VoxfaceError, match=r"^the thing .*thing.pt holds NaN or infinite weights \(net.w\)"):
        load_tagged(tmp_path, *ARGS)


def test_a_predictor_of_nan_weights_is_refused_and_predict_writes_nothing(predictor_file, tiny_corpus_dir,
                                                                        tmp_path, capsys):
    from voxface.cli import main

    nan = tmp_path / "nan.pt"
    torch.save(_nan_copy(torch.load(predictor_file, weights_only=False)), nan)
    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    assert main(["predict", str(voice), "--checkpoint", str(nan), "--out", str(tmp_path / "out")]) == 2
    assert "holds NaN or infinite weights" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_prediction_that_is_not_finite_is_an_error_not_a_file(predictor_file, tiny_corpus_dir, tmp_path):
    from voxface.predictors.voice_to_3d import VoiceTo3D
    from voxface.workflows.predict import predict_files

    predictor = VoiceTo3D.load(predictor_file)
    predictor._mesh = lambda parameters: np.full((1, 5, 3), np.nan)
    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    outcome = predict_files(predictor, [str(voice)], tmp_path / "out")[0]
    assert outcome.outputs == [] and "not finite" in outcome.error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cached_features_that_are_not_finite_are_refused_and_validate_reports_them(tiny_corpus_dir, tmp_path):
    from voxface.corpus.features import feature_path, load_features
    from voxface.corpus.format import Corpus
    from voxface.corpus.validate import find_problems

    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_dir, root)
    corpus = Corpus(root)
    path = feature_path(corpus, corpus.utterances[0], "cmp_logmel")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.full((1000, 64), np.nan, np.float32))
    with pytest.raises(VoxfaceError, match=rf"^{path} holds NaN or infinite values"):
        load_features([path])
    problems = " ".join(find_problems(root))
    assert "NaN or infinite" in problems and path.name in problems


def _recompressed(buffer: bytes) -> bytes:
    """The same torch archive with every entry deflated (torch itself stores them uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def test_an_archive_claiming_more_than_it_holds_is_refused_before_torch_reads_it(tmp_path, monkeypatch):
    raw = io.BytesIO()
    torch.save({"format": "voxface-thing", "extra": torch.zeros(2 << 20)}, raw)  # 8 MB of zeros
    path = tmp_path / "thing.pt"
    path.write_bytes(_recompressed(raw.getvalue()))
    with zipfile.ZipFile(path) as z:
        assert sum(i.file_size for i in z.infolist()) > 100 * path.stat().st_size  # it claims what it lacks

    def never(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(VoxfaceError, match=r"^the thing .*thing.pt declares 8.0 MB of entries in a file of 0.0 MB"):
        load_weights(path, "the thing")


def test_an_edited_entry_header_claiming_2_gib_is_refused(tmp_path):
    raw = io.BytesIO()
    torch.save({"format": "voxface-thing", "w": torch.ones(4)}, raw)
    data = bytearray(raw.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename)
    # the central-directory record of ``info``: its uncompressed size is at offset 24
    start = 0
    while True:
        start = data.find(b"PK\x01\x02", start)
        name_length = int.from_bytes(data[start + 28:start + 30], "little")
        if data[start + 46:start + 46 + name_length].decode() == info.filename:
            break
        start += 4
    data[start + 24:start + 28] = (2**31).to_bytes(4, "little")
    path = tmp_path / "thing.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(VoxfaceError, match=r"declares 2048.0 MB of entries"):
        load_weights(path, "the thing")


def test_messages_read_as_sentences_whatever_the_article(tmp_path):
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(VoxfaceError) as refused:
        load_weights(tmp_path / "cut.pt", "the supervised regressor")
    assert "a the" not in str(refused.value) and "readable the" not in str(refused.value)
    assert str(refused.value).startswith(f"cannot read the supervised regressor {tmp_path / 'cut.pt'}")
