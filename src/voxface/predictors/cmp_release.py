"""``voxface import cmp-release`` / ``wen-release``: the released checkpoints as voxface run folders.

The CMP release (Wu et al., CVPR 2022), unpacked as its README says::

    DIR/pretrained_models/voice_embedding.pth      voice encoder (both frameworks read this one)
    DIR/pretrained_models/generator_<it>.pth       unsupervised voice -> face-image generator
    DIR/pretrained_models/image3D_<it>.pth         unsupervised image -> 3D student (SynergyNet)
    DIR/pretrained_models/2D-to-3D-pretrained.tar  SynergyNet expert + BFM basis and whitening statistics
    DIR/supervised_64/generator_<it>.pth           supervised voice -> 3DMM regressor
    DIR/supervised_64/voice_embedding.pth          (optional copy of the encoder)
    DIR/train.configs/tri.mat                      BFM triangles (1-based)
    DIR/train.configs/keypoints_sim.npy            68 landmark vertices (or from --topology)

becomes, under ``RUN``: ``supervised/`` (``predictor.pt``, for ``predict``, ``evaluate``, ``serve``),
``unsupervised/`` (``unsupervised.pt``: encoder, generator, student and the expert that places the
mesh over the image), ``expert/`` (``expert.pt``: SynergyNet as an image-to-3D expert for
``train unsupervised`` / ``evaluate-unsupervised`` on a BFM corpus), and ``import.json`` (every source
file with its size and SHA-256). Wen et al. (2019) release ``voice_embedding.pth`` + ``generator.pth``
(the same classes) become a ``voice_to_image.pt`` for ``serve --image-run``.

Every file is read with ``torch.load(weights_only=True)``: these files come from the internet and
must not run code. The importer writes nothing until every file has been read and checked.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import yaml

from ..errors import VoxfaceError
from ..face3d.bfm import CMP_MEASUREMENTS, keypoint_vertices, read_triangles_mat, whitened_model
from ..face3d.morphable_model import MorphableModel
from ..methods.expert import EXPERT, EXPERT_FILE
from ..runs import atomic
from ..runs.checkpoints import load_weights
from ..runs.folder import CONFIG_FILE
from . import release_networks as networks
from .bundle import write_bundle
from .voice_image_3d import BUNDLE_FILE as UNSUPERVISED_FILE
from .voice_image_3d import VoiceToImageTo3D
from .voice_to_3d import BUNDLE_FILE as SUPERVISED_FILE
from .voice_to_3d import VoiceTo3D
from .voice_to_image import BUNDLE_FILE as IMAGE_FILE
from .voice_to_image import VoiceToImage

log = logging.getLogger(__name__)

EXPERT_TAR = "pretrained_models/2D-to-3D-pretrained.tar"
ENCODER_FILES = ("pretrained_models/voice_embedding.pth", "supervised_64/voice_embedding.pth")
TRIANGLE_FILES = ("train.configs/tri.mat", "tri_53215.mat", "tri.mat")
KEYPOINT_FILES = ("train.configs/keypoints_sim.npy", "keypoints_sim.npy")
TAR_PREFIX = "module."
STUDENT_PREFIX = "backbone."
EXPERT_PREFIX = "module.IGM.backbone."
KIND = "cmp-release"
WEN_KIND = "wen-release"
PROVENANCE = {"trained_on": "the real voices of VoxCeleb1 identities that are also in VGGFace (the CMP release; "
                            "it ships no voices, so how typical a voice is for it is unknown until "
                            "`voxface voice-reference` fits one)", "synthetic": False}
WEN_PROVENANCE = {"trained_on": "the real voices of VoxCeleb1 identities that are also in VGGFace (Wen et al. "
                                 "2019's release)", "synthetic": False}


@dataclass(frozen=True)
class CMPReleaseFiles:
    """Where each part of an unpacked CMP release is; ``None`` for the parts it does not ship."""

    encoder: Path
    expert_tar: Path
    triangles: Path
    keypoints: Path
    regressor: Path | None
    generator: Path | None
    student: Path | None

    @classmethod
    def find(cls, folder: str | Path, topology: str | Path | None = None) -> "CMPReleaseFiles":
        """Locate the files; VoxfaceError naming everything that is missing.

        ``topology``: a folder with ``tri_53215.mat``/``tri.mat`` and ``keypoints_sim.npy`` (3DDFA's,
        or ``shared/data/bfm_topology``) used when the release lacks ``train.configs``.
        """
        root, found, missing = _model_files(folder, topology)
        found.update(encoder=_first(root, ENCODER_FILES), regressor=_latest(root / "supervised_64", "generator"),
                     generator=_latest(root / "pretrained_models", "generator"),
                     student=_latest(root / "pretrained_models", "image3D"))
        if found["encoder"] is None:
            missing.insert(0, " or ".join(ENCODER_FILES))
        if found["regressor"] is None and (found["generator"] is None or found["student"] is None):
            missing.append("supervised_64/generator_<it>.pth, or pretrained_models/generator_<it>.pth "
                           "with pretrained_models/image3D_<it>.pth")
        if missing:
            raise VoxfaceError(f"{root} is not an unpacked CMP release: missing {'; '.join(missing)}")
        return cls(**found)

    def sources(self) -> dict[str, Path]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def shared_release_layout(shared: str | Path, out: str | Path) -> Path | None:
    """The reference data's release files laid out as the release unpacks, for tests and benchmarks:
    ``out/pretrained_models`` and ``out/supervised_64`` link to ``shared/cmp_checkpoints``, and
    ``out/train.configs`` holds the topology files of ``shared/bfm_topology``. Returns ``out``, or
    None when ``shared`` has no release checkpoints."""
    import shutil

    shared, out = Path(shared), Path(out)
    source = (shared / "cmp_checkpoints").resolve()
    if not (source / "pretrained_models").is_dir():
        return None
    (out / "train.configs").mkdir(parents=True)
    for part in ("pretrained_models", "supervised_64"):
        (out / part).symlink_to(source / part)
    shutil.copy(shared / "bfm_topology" / "tri_53215.mat", out / "train.configs" / "tri.mat")
    shutil.copy(shared / "bfm_topology" / "keypoints_sim.npy", out / "train.configs" / "keypoints_sim.npy")
    return out


def import_cmp_release(folder: str | Path, out: str | Path, topology: str | Path | None = None) -> dict[str, Path]:
    """Convert an unpacked CMP release into voxface run folders under ``out``.

    Returns:
        name -> folder written: ``supervised`` and/or ``unsupervised``, and ``expert``.

    Raises:
        VoxfaceError: naming the folder or file, if the release is incomplete, a file is unreadable
            or not the expected network, or ``out`` already holds something else.
    """
    files = CMPReleaseFiles.find(folder, topology)
    out = Path(out)
    _refuse_occupied(out, ("supervised", "unsupervised", "expert"))
    tar = _state_dict(files.expert_tar, "the SynergyNet expert archive", key="state_dict")
    model = release_model(tar, files.expert_tar, files.triangles, files.keypoints)
    param_mean, param_std = (_tar_tensor(tar, name, files.expert_tar) for name in ("param_mean", "param_std"))
    encoder = networks.voice_encoder(_state_dict(files.encoder, "the voice encoder"), files.encoder)
    expert = networks.synergynet(tar, EXPERT_PREFIX, param_mean, param_std, files.expert_tar)
    parts = {}
    if files.regressor is not None:
        regressor = networks.supervised_regressor(_state_dict(files.regressor, "the supervised regressor"),
                                                  files.regressor)
        parts["supervised"] = (VoiceTo3D("cmp", encoder, regressor, model, provenance=PROVENANCE), SUPERVISED_FILE)
    if files.generator is not None and files.student is not None:
        generator = networks.face_generator(_state_dict(files.generator, "the face generator"), files.generator)
        student = networks.synergynet(_state_dict(files.student, "the image-to-3D student"), STUDENT_PREFIX,
                                      param_mean, param_std, files.student)
        parts["unsupervised"] = (VoiceToImageTo3D(encoder, generator, student, model, "cmp-release", expert),
                                 UNSUPERVISED_FILE)
    written = {}
    for name, (predictor, filename) in parts.items():
        written[name] = _write_run(out / name, f"{KIND}/{name}", files.sources(), lambda p, x=predictor: x.save(p),
                                   filename)
    written["expert"] = _write_run(out / "expert", f"{KIND}/expert", files.sources(),
                                   lambda p: write_bundle(p, EXPERT, {"network": expert}, model=model.to_npz_bytes()),
                                   EXPERT_FILE)
    atomic.write_json(out / "import.json", {"kind": KIND, "source": str(Path(folder).resolve()),
                                            "files": _fingerprints(files.sources()),
                                            "runs": {k: str(v) for k, v in written.items()}})
    return written


def release_model(tar: Mapping[str, torch.Tensor], expert_tar: Path, triangles: Path,
                  keypoints: Path) -> MorphableModel:
    """The BFM model the release's coefficients belong to: ``u``, ``w_shp``, ``w_exp`` and the
    whitening statistics of the expert archive ``tar`` (read from ``expert_tar``), the release's
    triangles and landmarks."""
    u, w_shp, w_exp, mean, std = (_tar_tensor(tar, k, expert_tar).double().numpy()
                                  for k in ("u", "w_shp", "w_exp", "param_mean", "param_std"))
    return whitened_model("bfm", u, w_shp, w_exp, (mean, std), read_triangles_mat(triangles),
                          keypoint_vertices(keypoints), dict(CMP_MEASUREMENTS), source=f"CMP release {expert_tar}")


def load_release_model(folder: str | Path, topology: str | Path | None = None) -> MorphableModel:
    """The release's BFM model from an unpacked release (the ``cmp-release:PATH`` model spec), so
    that corpora built on it (``synth``, ``prepare``) can be scored with the imported predictors."""
    root, found, missing = _model_files(folder, topology)
    if missing:
        raise VoxfaceError(f"{root} does not hold the release's BFM model: missing {'; '.join(missing)}")
    tar = _state_dict(found["expert_tar"], "the SynergyNet expert archive", key="state_dict")
    return release_model(tar, **found)


def _model_files(folder, topology) -> tuple[Path, dict[str, Path | None], list[str]]:
    """The release folder, its files of the BFM model (archive, triangles, landmarks) and what is missing."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise VoxfaceError(f"CMP release folder not found: {root} (unpack the release there first)")
    places = [root] + ([Path(topology).expanduser()] if topology else [])
    found = {"expert_tar": _first(root, (EXPERT_TAR,)),
             "triangles": next((f for p in places if (f := _first(p, TRIANGLE_FILES))), None),
             "keypoints": next((f for p in places if (f := _first(p, KEYPOINT_FILES))), None)}
    wanted = {"expert_tar": EXPERT_TAR, "triangles": TRIANGLE_FILES[0] + " (or --topology with tri_53215.mat)",
              "keypoints": KEYPOINT_FILES[0] + " (or --topology with keypoints_sim.npy)"}
    return root, found, [text for key, text in wanted.items() if found[key] is None]


def import_wen_release(folder: str | Path, out: str | Path) -> Path:
    """Wen et al. (2019) ``voice_embedding.pth`` + ``generator.pth`` (in ``folder`` or its
    ``pretrained_models/``) -> ``out/voice_to_image.pt`` for ``serve --image-run``."""
    root = Path(folder).expanduser()
    found = {name: _first(root, (f"{name}.pth", f"pretrained_models/{name}.pth"))
             for name in ("voice_embedding", "generator")}
    missing = [f"{name}.pth" for name, path in found.items() if path is None]
    if missing:
        raise VoxfaceError(f"{root} is not a Wen et al. (2019) release: missing {', '.join(missing)} "
                           "(in the folder or its pretrained_models/)")
    out = Path(out)
    _refuse_occupied(out, (IMAGE_FILE,))
    encoder = networks.voice_encoder(_state_dict(found["voice_embedding"], "the voice encoder"),
                                     found["voice_embedding"])
    generator = networks.face_generator(_state_dict(found["generator"], "the face generator"), found["generator"])
    model = VoiceToImage(encoder, generator, {"generator": "wen2019"}, WEN_PROVENANCE)
    return _write_run(out, WEN_KIND, found, model.save, IMAGE_FILE)


# ------------------------------------------------------------------------------- reading
def _state_dict(path: Path, what: str, key: str | None = None) -> dict[str, torch.Tensor]:
    """A released ``torch.save`` of tensors, read without running code (``load_weights``)."""
    saved = load_weights(path, what, "download it again from the release")
    if key is not None:
        saved = saved.get(key) if isinstance(saved, dict) else None
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise VoxfaceError(f"{path} is not {what}: expected a state dict of tensors"
                           + (f" under {key!r}" if key else ""))
    return saved


def _tar_tensor(tar: Mapping[str, torch.Tensor], name: str, source: Path) -> torch.Tensor:
    value = tar.get(TAR_PREFIX + name)
    if value is None:
        raise VoxfaceError(f"{source} does not hold the BFM data of the release: {TAR_PREFIX + name} is missing")
    return value


def _first(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def _latest(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>_<iteration>.pth`` with the highest iteration, or None."""
    numbered = [(int(m.group(1)), p) for p in folder.glob(f"{stem}_*.pth")
                if (m := re.fullmatch(rf"{re.escape(stem)}_(\d+)\.pth", p.name))]
    return max(numbered)[1] if numbered else None


# ------------------------------------------------------------------------------- writing
def _refuse_occupied(out: Path, names: tuple[str, ...]) -> None:
    if out.exists() and not out.is_dir():
        raise VoxfaceError(f"--out {out} is a file; give a folder")
    taken = [n for n in names if (out / n).exists()]
    if taken:
        raise VoxfaceError(f"{out} already holds {', '.join(taken)}; import into an empty folder")


def _write_run(run: Path, kind: str, sources: dict[str, Path], save, filename: str) -> Path:
    """A run folder: the predictor file and a ``config.yaml`` saying where it came from."""
    save(run / filename)
    atomic.write_text(run / CONFIG_FILE, yaml.safe_dump(
        {"kind": kind, "imported_from": {k: str(Path(v).resolve()) for k, v in sources.items()}}, sort_keys=False))
    log.info("imported %s -> %s", kind, run / filename)
    return run


def _fingerprints(sources: dict[str, Path]) -> dict[str, dict]:
    return {name: {"path": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path)}
            for name, path in sources.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

