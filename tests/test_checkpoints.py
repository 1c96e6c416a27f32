"""load_tagged: run folder or file, and a clear error for missing, truncated and foreign files."""

from __future__ import annotations

import pytest
import torch

from voxface.errors import VoxfaceError
from voxface.runs.checkpoints import load_tagged

ARGS = ("thing.pt", "voxface-thing", "thing", "train one")


def test_reads_from_folder_or_file(tmp_path):
    torch.save({"format": "voxface-thing", "x": torch.ones(2)}, tmp_path / "thing.pt")
    for where in (tmp_path, tmp_path / "thing.pt"):
        saved, path = load_tagged(where, *ARGS)
        assert path == tmp_path / "thing.pt" and torch.equal(saved["x"], torch.ones(2))


def test_missing_truncated_and_foreign_files_are_named(tmp_path):
    with pytest.raises(VoxfaceError, match=f"no thing at {tmp_path / 'thing.pt'}; train one"):
        load_tagged(tmp_path, *ARGS)
    torch.save({"format": "voxface-thing"}, tmp_path / "full.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:40])
    with pytest.raises(VoxfaceError, match="cannot read thing .*cut.pt"):
        load_tagged(tmp_path / "cut.pt", *ARGS)
    torch.save({"format": "voxface-other"}, tmp_path / "other.pt")
    with pytest.raises(VoxfaceError, match="other.pt is not a voxface thing"):
        load_tagged(tmp_path / "other.pt", *ARGS)
