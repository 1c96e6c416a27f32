"""The corpus format, its validator, and the synthetic generator's determinism and resumption."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from voxface.corpus import synthetic
from voxface.corpus.format import Corpus, split_for_name
from voxface.corpus.names import identity_names
from voxface.corpus.synthetic import SynthConfig, generate_corpus
from voxface.corpus.validate import check_corpus, find_problems
from voxface.errors import VoxfaceError

from .conftest import TINY


def _digest(root: Path) -> dict[str, str]:
    """sha1 of every generated file under root, by relative path (not logs, nor the feature caches
    that training writes into ``features/``)."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".log" and p.relative_to(root).parts[0] != "features"}


def test_split_follows_initial():
    assert split_for_name("Eve_X") == "test" and split_for_name("abe") == "test"
    assert split_for_name("Fred") == "train" and split_for_name("Zoe") == "train"


def test_names_spread_over_alphabet():
    names = identity_names(52, np.random.default_rng(0))
    assert len(set(names)) == 52
    assert sorted({n[0] for n in names}) == [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def test_tiny_corpus_is_valid_and_complete(tiny_corpus_dir):
    corpus = check_corpus(tiny_corpus_dir)
    assert len(corpus.identities) == TINY["identities"]
    assert len(corpus.utterances) == TINY["identities"] * TINY["utterances"]
    assert len(corpus.faces) == TINY["identities"] * TINY["images"]
    assert {i.split for i in corpus.identities} == {"train", "test"}
    assert corpus.identity_params["shape"].shape == (TINY["identities"], corpus.model.n_shape)
    ids, voice, fields = corpus.voice_params
    assert voice.shape == (TINY["identities"], len(fields)) and np.isfinite(voice).all()
    assert (tiny_corpus_dir / "preview.png").stat().st_size > 10_000
    assert corpus.manifest["synthetic"] is True


def test_validator_lists_each_problem(tiny_corpus_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_corpus_dir, broken)
    corpus = Corpus(broken)
    (broken / corpus.utterances[0].audio).unlink()
    rows = (broken / "identities.csv").read_text().splitlines()
    first = rows[1].split(",")
    first[2] = "x"                                   # bad gender
    first[3] = "train" if first[3] == "test" else "test"  # split contradicts the name
    rows[1] = ",".join(first)
    (broken / "identities.csv").write_text("\n".join(rows) + "\n")
    problems = find_problems(broken)
    text = "\n".join(problems)
    assert "gender 'x'" in text
    assert "belong to" in text
    assert "missing" in text and corpus.utterances[0].audio in text
    with pytest.raises(VoxfaceError, match="failed validation"):
        check_corpus(broken)


def test_validator_catches_parameter_mismatch(tiny_corpus_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_corpus_dir, broken)
    with np.load(broken / "identity_params.npz") as z:
        arrays = dict(z)
    arrays["shape"] = arrays["shape"][:, :-1]
    np.savez(broken / "identity_params.npz", **arrays)
    assert any("expected" in p and "shape" in p for p in find_problems(broken, check_files=False))


def test_not_a_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(VoxfaceError, match="no manifest.json"):
        Corpus(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "voxface-corpus", "version": 99}))
    with pytest.raises(VoxfaceError, match="version 99"):
        Corpus(tmp_path)


def test_generation_is_deterministic_and_resumes_after_a_kill(tiny_corpus_dir, tmp_path, monkeypatch):
    """A run killed after two identities, then rerun, equals an uninterrupted run byte for byte."""
    config = SynthConfig(**TINY)
    calls = {"n": 0}
    real = synthetic._run_identity

    def dying(job):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        real(job)

    out = tmp_path / "resumed"
    monkeypatch.setattr(synthetic, "_run_identity", dying)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(out, config, progress=False)
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(synthetic, "_run_identity", real)
    generate_corpus(out, config, progress=False)
    assert _digest(out) == _digest(tiny_corpus_dir)


def test_refuses_a_folder_with_another_corpus(tiny_corpus_dir, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(tiny_corpus_dir, out)
    with pytest.raises(VoxfaceError, match="other settings"):
        generate_corpus(out, SynthConfig(**{**TINY, "seed": 99}), progress=False)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(VoxfaceError, match="not an unfinished synthetic corpus"):
        generate_corpus(stranger, SynthConfig(**TINY), progress=False)


def test_photos_can_be_added_later_and_everything_else_stays(tiny_corpus_dir, tmp_path):
    """TINY has one photo per identity; asking for two renders the second and keeps voices, shapes and
    the first photo byte for byte (``with_photos`` does it for the methods that need many)."""
    from voxface.corpus.synthetic import with_photos

    out = tmp_path / "corpus"
    shutil.copytree(tiny_corpus_dir, out)
    before = _digest(out)
    corpus = with_photos(out, 2, progress=False)
    after = _digest(out)
    assert len(corpus.faces) == 2 * TINY["identities"] and corpus.manifest["generator"]["images"] == 2
    kept = {k: v for k, v in before.items() if not k.endswith((".done.json", "faces.csv", "manifest.json", "generator.json",
                                                               "face_params.npz", "preview.png"))}
    assert all(after[k] == v for k, v in kept.items())  # every WAV, the first photos, the shapes
    assert sum(k.startswith("faces/") for k in after) == 2 * sum(k.startswith("faces/") for k in before)
    assert with_photos(out, 2, progress=False).manifest == corpus.manifest  # enough photos: nothing done
    generate_corpus(out, SynthConfig(**TINY), progress=False)  # back to one photo per identity
    assert _digest(out) == before
