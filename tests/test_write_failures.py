"""Issue 22, item 2: a read-only or full output folder is one line naming the folder and the cause
(exit 2), never a traceback; a batch says what it wrote before it stopped and leaves no partial file.
Tests run as root, where chmod does not stop a write, so the failures are made by monkeypatching."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from voxface.cli import main
from voxface.errors import VoxfaceError
from voxface.runs import atomic


def _fail_with(code: int):
    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return failing


def test_a_read_only_folder_is_one_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.tempfile, "mkstemp", _fail_with(errno.EROFS))
    with pytest.raises(VoxfaceError, match=rf"cannot write x.json in {tmp_path / 'out'}: Read-only file system"):
        atomic.write_json(tmp_path / "out" / "x.json", {"a": 1})


def test_a_full_disk_while_writing_is_one_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "write_bytes", _fail_with(errno.ENOSPC))
    with pytest.raises(VoxfaceError, match=rf"cannot write x.npy in {tmp_path}: No space left on device; free"):
        atomic.write_npy(tmp_path / "x.npy", np.zeros(3))
    assert list(tmp_path.iterdir()) == []


def test_predict_on_a_full_disk_says_what_it_wrote_before_it_stopped(predictor_file, tiny_corpus_dir, tmp_path,
                                                                       monkeypatch, capsys):
    voices = sorted((tiny_corpus_dir / "audio").glob("*/*.wav"))[:2]
    real, calls = Path.write_bytes, []

    def full_on_the_second_json(self, data):
        calls.append(self)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_on_the_second_json)
    out = tmp_path / "out"
    assert main(["predict", *map(str, voices), "--checkpoint", str(predictor_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("voxface predict: error: cannot write") and "No space left on device" in err
    stem = voices[0].stem
    assert f"before it stopped, 5 file(s) were written to {out}: {stem}.obj, {stem}.png, {stem}.json" in err
    assert not [p for p in out.iterdir() if atomic.TEMPORARY_MARKER in p.name]


def test_features_into_a_read_only_folder_exits_2_with_one_line(tiny_corpus_dir, tmp_path, monkeypatch, capsys):
    voice = next((tiny_corpus_dir / "audio").glob("*/*.wav"))
    monkeypatch.setattr(atomic.tempfile, "mkstemp", _fail_with(errno.EROFS))
    assert main(["features", str(voice), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Read-only file system" in err and "nothing was written" in err


def test_an_os_error_outside_the_atomic_writes_is_still_one_line(tmp_path, monkeypatch, capsys):
    import voxface.corpus.synthetic as synthetic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "c" / "synth.log"))

    monkeypatch.setattr(synthetic, "generate_corpus", full)
    assert main(["synth", "--out", str(tmp_path / "c"), "--identities", "2"]) == 2
    err = capsys.readouterr().err.splitlines()[-1] + "\n"
    assert err == f"voxface synth: error: cannot write synth.log in {tmp_path / 'c'}: No space left on device; " \
                  "free space there or choose another folder\n"
