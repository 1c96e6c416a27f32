"""Issue 22, item 3: every file voxface reads that a user or a download supplied gets the one-line
refusal naming it, however it is damaged: binary, deeply nested or huge-number YAML, object-dtype
``.npy``, a binary JSON, an image that claims 30000 x 30000 pixels, foreign ``metrics.json``."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from voxface.errors import VoxfaceError

BINARY = bytes(range(256)) * 8


@pytest.mark.parametrize("content, why", [
    (BINARY, "binary"),
    (b"[" * 20000 + b"]" * 20000, "nested"),
    (b"lr: " + b"9" * 5000, "number"),
    (b"# " + b"x" * (2 << 20), "MB"),
])
def test_a_damaged_yaml_config_is_one_line_naming_it(tmp_path, content, why):
    from voxface.runs.config import load_yaml

    path = tmp_path / "settings.yaml"
    path.write_bytes(content)
    with pytest.raises(VoxfaceError, match=rf"^config file {path} .*{why}"):
        load_yaml(path)


def test_a_corrupt_run_config_given_to_evaluate_2d_is_refused_naming_it(tmp_path, capsys):
    from voxface.cli import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_bytes(BINARY)
    assert main(["evaluate-2d", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert f"{tmp_path / 'run' / 'config.yaml'}" in err and "binary" in err


def test_an_object_npy_in_a_topology_folder_is_refused_without_unpickling(tmp_path):
    from voxface.face3d.bfm import keypoint_vertices

    path = tmp_path / "keypoints_sim.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(VoxfaceError, match=rf"^3DDFA file {path} holds Python objects"):
        keypoint_vertices(path)


def test_a_binary_calibration_file_is_refused_naming_it(tmp_path):
    from voxface.reports.voice_to_image import _threshold

    path = tmp_path / "calibration.json"
    path.write_bytes(BINARY)
    with pytest.raises(VoxfaceError, match=rf"^calibration {path} is binary"):
        _threshold(None, path, None, None, tmp_path)
    path.write_text('{"tau": "high"}')
    with pytest.raises(VoxfaceError, match=rf"^calibration {path}"):
        _threshold(None, path, None, None, tmp_path)


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header declares ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = b"IHDR" + header
    data = b"IDAT" + zlib.compress(b"\0\0\0\0")
    chunk = lambda body: struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(ihdr) + chunk(data) + chunk(b"IEND")


def test_an_image_claiming_30000_squared_pixels_is_refused_before_decoding(tmp_path):
    from voxface.vision.images import read_rgb

    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(VoxfaceError, match=rf"^cannot read image {path}: it declares more than the 64,000,000 pix"):
        read_rgb(path)
    path.write_bytes(_png_claiming(9000, 9000))  # within PIL's own limit, beyond voxface's
    with pytest.raises(VoxfaceError, match=rf"^cannot read image {path}: it declares 9000 x 9000 pixels"):
        read_rgb(path)


@pytest.mark.parametrize("content", [BINARY, b'{"methods": ', b'["a list"]', b'{"methods": {"x": {"ARE": 3}}}',
                                     b"[" * 100000])
def test_damaged_or_foreign_metrics_given_to_aggregate_are_refused_naming_them(tmp_path, content):
    from voxface.reports.aggregate import aggregate_runs

    good = {"methods": {"m": {"ARE": {"mean": 1.0}}}}
    import json

    (tmp_path / "a.json").write_text(json.dumps(good))
    (tmp_path / "b.json").write_bytes(content)
    with pytest.raises(VoxfaceError, match=rf"{tmp_path / 'b.json'}"):
        aggregate_runs([tmp_path / "a.json", tmp_path / "b.json"])
