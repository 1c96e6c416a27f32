"""How close do the imported CMP release models come to the official code's outputs?

Usage: .venv/bin/python bench/check_release_equality.py [--runs RUN_FOLDER]

Imports ``shared/data/cmp_checkpoints`` (the release's exact layout, with the official forward code's
outputs in ``expected/``) into a temporary folder, unless ``--runs`` names an earlier
``voxface import cmp-release`` output of the same files, and prints, for the three clips, the maximum
relative error (max |ours - official| / max |official|) of every expected array: from the official
features, and the meshes again from the WAV through voxface's own front end. tests/test_cmp_release.py
asserts each is below 1e-4. First it prints the front end against ``shared/data/cmp_reference``: on
how many of the 18 clips the silence removal keeps the official voiced segments and samples, and the
largest |difference| of the features (tests/test_vad.py and tests/test_features.py assert them).
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import torch
import torch.nn.functional as F

from voxface.audio import vad
from voxface.audio.features import cmp_logmel
from voxface.audio.voice import prepare_voice
from voxface.face3d.transforms import apply_similarity, split_camera
from voxface.paths import shared_data_dir
from voxface.predictors.cmp_release import import_cmp_release
from voxface.predictors.voice_image_3d import VoiceToImageTo3D
from voxface.predictors.voice_to_3d import VoiceTo3D

CLIPS = ("george_0", "nicolas_1", "theo_2")


def relative_error(ours, official: np.ndarray) -> float:
    return float(np.abs(np.asarray(ours, np.float64) - official).max() / np.abs(official).max())


def imported_runs(shared: Path, scratch: Path) -> Path:
    """The fixture laid out as the release unpacks, imported into ``scratch/cmp``."""
    release = scratch / "release"
    (release / "train.configs").mkdir(parents=True)
    for part in ("pretrained_models", "supervised_64"):
        (release / part).symlink_to((shared / "cmp_checkpoints" / part).resolve())
    for name, target in (("tri_53215.mat", "tri.mat"), ("keypoints_sim.npy", "keypoints_sim.npy")):
        shutil.copy(shared / "bfm_topology" / name, release / "train.configs" / target)
    import_cmp_release(release, scratch / "cmp")
    return scratch / "cmp"


def clip_errors(runs: Path, shared: Path, clip: str) -> dict[str, float]:
    official = np.load(shared / "cmp_checkpoints" / "expected" / f"{clip}.npz")
    features = torch.from_numpy(np.load(shared / "cmp_reference" / "official_features" / f"{clip}.npy").T[None].copy())
    wav = prepare_voice(shared / "cmp_reference" / "wav" / f"{clip}.wav")
    supervised = VoiceTo3D.load(runs / "supervised")
    unsupervised = VoiceToImageTo3D.load(runs / "unsupervised")
    with torch.no_grad():
        embedding = supervised.encoder(features)
        whitened = (supervised.regressor(embedding) - supervised.regressor.target_mean) / supervised.regressor.target_std
        faces = unsupervised.faces(unsupervised.encoder(features))
        mesh = unsupervised.meshes(faces)[0]
        pose = unsupervised.poses(faces)[0]
        _, rotation, offset = split_camera(pose.astype(np.float64))
        ours = {"embedding": embedding, "params51": whitened,
                "mesh_supervised": supervised.meshes(embedding)[0],
                "face_image": faces[0],
                "face_image_120": F.interpolate(faces, size=(120, 120), mode="bilinear", align_corners=True)[0],
                "mesh_unsupervised": mesh, "pose12": pose,
                "mesh_unsupervised_posed": apply_similarity(mesh.astype(np.float64), 1.0, rotation, offset)}
        errors = {name: relative_error(value, official[name]) for name, value in ours.items()}
        errors["mesh_supervised from the WAV"] = relative_error(supervised.predict(wav).mesh,
                                                               official["mesh_supervised"])
        from_wav = unsupervised.meshes(unsupervised.faces(unsupervised.embed(supervised.voice_features([wav]))))[0]
        errors["mesh_unsupervised from the WAV"] = relative_error(from_wav, official["mesh_unsupervised"])
    return errors


def front_end_agreement(folder: Path) -> tuple[int, int, int, float]:
    """Over the reference clips: how many have the official segments, how many the official kept
    samples, how many clips there are, and the largest |ours - official| of the features."""
    rows = json.loads((folder / "reference.json").read_text())["rows"]
    segments = samples = 0
    worst = 0.0
    for row in rows:
        _, pcm = scipy.io.wavfile.read(folder / row["file"])
        segments += [b - a for a, b in vad.voiced_spans(pcm)] == row["segment_samples"]
        samples += len(vad.trim_silence(pcm)) == row["speech_samples_after_vad"]
        official = np.load(folder / row["features"])
        worst = max(worst, float(np.abs(cmp_logmel(prepare_voice(folder / row["file"])) - official).max()))
    return segments, samples, len(rows), worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="folder written by `voxface import cmp-release` of the fixture")
    args = parser.parse_args()
    shared = shared_data_dir()
    if not (shared / "cmp_checkpoints" / "expected").is_dir():
        raise SystemExit(f"{shared / 'cmp_checkpoints'} not found: set VOXFACE_SHARED_DATA")
    if (shared / "cmp_reference" / "reference.json").is_file():
        segments, samples, clips, worst_feature = front_end_agreement(shared / "cmp_reference")
        print(f"front end: official voiced segments on {segments}/{clips} clips, official kept samples on "
              f"{samples}/{clips}; features max |diff| {worst_feature:.1e} (tolerance 1e-4)")
    with tempfile.TemporaryDirectory() as scratch:
        runs = args.runs or imported_runs(shared, Path(scratch))
        table = {clip: clip_errors(runs, shared, clip) for clip in CLIPS}
    print(f"{'array':34s} " + " ".join(f"{c:>10s}" for c in CLIPS))
    for name in table[CLIPS[0]]:
        print(f"{name:34s} " + " ".join(f"{table[c][name]:10.1e}" for c in CLIPS))
    worst = max(v for row in table.values() for v in row.values())
    print(f"largest relative error: {worst:.1e} (tolerance 1e-4)")


if __name__ == "__main__":
    main()
