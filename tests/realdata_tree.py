"""A small real VoxCeleb x VGGFace-like tree built from the shared data: FSDD voices, ORL photos, made-up names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
PEOPLE = (  # (VoxCeleb-style id, made-up name, gender); A-E names are the test split
    ("id90001", "Ada_Quill", "f"), ("id90002", "Bram_Otter", "m"), ("id90003", "Fay_Linden", "f"),
    ("id90004", "Gus_Marsh", "m"), ("id90005", "Hal_Penn", "m"), ("id90006", "Ivy_Stone", "f"),
    ("id90007", "Jon_Reed", "m"), ("id90008", "Kit_Vale", "f"),
)
UTTERANCES = 3
PHOTOS = 3
DIGITS_PER_UTTERANCE = 4


def build_tree(shared: Path, root: Path) -> dict[str, Path]:
    """Write audio/<id>/<video>/<utt>.wav, faces/<Name>/<k>.jpg and meta.csv under ``root``.

    Identity i speaks as FSDD speaker i mod 6 (recordings not shared between identities) and looks
    like ORL person s(i+1). Planted failures: an unreadable and a too-short utterance of the first
    identity, a photo without a face and an unreadable photo of the second.
    """
    recordings = shared / "fsdd" / "recordings"
    audio, faces = root / "audio", root / "faces"
    for i, (ident, name, _) in enumerate(PEOPLE):
        speaker = FSDD_SPEAKERS[i % len(FSDD_SPEAKERS)]
        for u in range(UTTERANCES):
            index = 10 * (i // len(FSDD_SPEAKERS)) + u
            clips = [sf.read(recordings / f"{d}_{speaker}_{index}.wav", dtype="float32")[0]
                     for d in range(DIGITS_PER_UTTERANCE)]
            path = audio / ident / f"vid{u % 2}" / f"{u + 1:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, np.concatenate(clips), 8000, subtype="PCM_16")
        for k in range(PHOTOS):
            path = faces / name / f"{k + 1:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.open(shared / "orl_faces" / f"s{i + 1}" / f"{k + 1}.pgm").convert("RGB").save(path, quality=95)
    first, second = PEOPLE[0], PEOPLE[1]
    (audio / first[0] / "vid0" / "broken.wav").write_bytes(b"RIFF this is not audio")
    sf.write(audio / first[0] / "vid1" / "short.wav", np.zeros(1600, np.float32), 8000, subtype="PCM_16")
    Image.fromarray(np.full((112, 92, 3), 128, np.uint8)).save(faces / second[1] / "blank.jpg")
    (faces / second[1] / "broken.jpg").write_bytes(b"not a jpeg")
    meta = root / "meta.csv"
    rows = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    rows += [f"{i}\t{n}\t{g}\tNowhere\tdev" for i, n, g in PEOPLE] + ["id99999\tNo_Data\tm\tNowhere\tdev"]
    meta.write_text("\n".join(rows) + "\n")
    return {"audio": audio, "faces": faces, "meta": meta}
