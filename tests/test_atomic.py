"""Atomic writes: the final name appears only complete; a killed writer's temporary is swept."""

from __future__ import annotations

import numpy as np
import pytest

from voxface.runs import atomic


def test_failed_write_leaves_neither_final_nor_temporary(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.name.startswith(".table.") and tmp.suffix == ".csv"
            raise RuntimeError("killed")
    assert list((tmp_path / "sub").iterdir()) == []


def test_round_trips(tmp_path):
    atomic.write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": np.arange(2)})
    assert (tmp_path / "a.json").read_text().replace(" ", "").replace("\n", "") == '{"x":1.5,"y":[0,1]}'
    atomic.write_npy(tmp_path / "b.npy", np.eye(2))
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.eye(2))


def test_stale_temporaries_are_swept_and_nothing_else(tmp_path):
    (tmp_path / "faces" / "x").mkdir(parents=True)
    stale = tmp_path / "faces" / "x" / ".f_120.ab12cd.tmp.png"   # what SIGKILL leaves behind
    stale.write_bytes(b"partial")
    keep = [tmp_path / "faces" / "x" / "f_120.png", tmp_path / ".hidden_config", tmp_path / "notes.tmp.txt"]
    for p in keep:
        p.write_bytes(b"data")
    assert atomic.remove_stale_temporaries(tmp_path) == 1
    assert not stale.exists() and all(p.exists() for p in keep)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    import os
    import stat

    previous = os.umask(umask)
    try:
        atomic.write_text(tmp_path / "shared.txt", "for colleagues")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "shared.txt").stat().st_mode) == mode


def test_a_file_where_the_folder_should_be_is_one_error(tmp_path):
    from voxface.errors import VoxfaceError

    (tmp_path / "out").write_text("a file")
    with pytest.raises(VoxfaceError, match="a file stands where its folder should be"):
        atomic.write_text(tmp_path / "out" / "x.json", "{}")
