"""Where and in which precision voxface computes: the ``device`` and ``precision`` settings.

``device``: ``auto`` (the first CUDA GPU when one is visible, else the CPU), ``cpu``, ``cuda`` or
``cuda:N``. ``precision``: ``auto`` (bf16 mixed on a GPU that does bf16 natively, 16-bit mixed on
an older GPU, 32-bit on the CPU), ``32``, ``bf16`` or ``16``. Training passes them to Lightning;
``evaluate``, ``predict`` and ``serve`` move the predictor to the device (inference stays 32-bit).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import VoxfaceError

DEVICES = ("auto", "cpu", "cuda", "cuda:N")
PRECISIONS = ("auto", "32", "bf16", "16")
if TYPE_CHECKING:  # torch is imported where a device is resolved, not by the config checks
    import torch

_DEVICE = re.compile(r"^(auto|cpu|cuda)(:\d+)?$")


def add_device_argument(parser) -> None:
    """The ``--device`` option of the commands that run a trained network (evaluate, predict, serve)."""
    parser.add_argument("--device", default="auto", help="where the networks compute: auto (a CUDA GPU when one "
                        "is visible, else the CPU) | cpu | cuda | cuda:N (default: %(default)s)")


def device_problem(spec: str) -> str | None:
    """None when ``spec`` is a device setting voxface knows, else what is wrong (for config checks)."""
    match = _DEVICE.match(str(spec))
    if match is None or (match.group(2) and match.group(1) != "cuda"):
        return f"must be one of {', '.join(DEVICES)}"
    return None


def resolve_device(spec: str = "auto") -> torch.device:
    """The torch device of a ``device`` setting.

    Raises:
        VoxfaceError: for an unknown setting, or ``cuda`` when no CUDA GPU is visible.
    """
    import torch

    problem = device_problem(spec)
    if problem:
        raise VoxfaceError(f"device {spec!r} {problem}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise VoxfaceError(f"device {spec!r}: no CUDA GPU is visible to this process; use device=cpu or auto")
        if (device.index or 0) >= torch.cuda.device_count():
            raise VoxfaceError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    return device


def native_bf16(device: torch.device) -> bool:
    """True on a CUDA GPU that computes bfloat16 in hardware (Ampere and later); emulated bf16
    (a 2080 or V100) does not count."""
    import torch

    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def lightning_precision(precision: str, device: torch.device) -> str:
    """The Lightning ``precision`` of a ``precision`` setting on ``device``.

    Raises:
        VoxfaceError: for bf16 on a GPU without native bf16, or 16-bit on the CPU.
    """
    if precision not in PRECISIONS:
        raise VoxfaceError(f"precision {precision!r} must be one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type != "cuda":
            return "32-true"
        return "bf16-mixed" if native_bf16(device) else "16-mixed"
    if precision == "bf16" and device.type == "cuda" and not native_bf16(device):
        import torch

        raise VoxfaceError(f"precision bf16: {torch.cuda.get_device_name(device)} has no native bfloat16 "
                           "(it would be emulated, slowly); use precision=16 or 32")
    if precision == "16" and device.type != "cuda":
        raise VoxfaceError("precision 16 needs a CUDA GPU; on the CPU use precision=32 or bf16")
    return {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}[precision]


def lightning_accelerator(device: torch.device) -> tuple[str, list[int] | int]:
    """Lightning's (``accelerator``, ``devices``) for one process on ``device``."""
    if device.type == "cuda":
        return "cuda", [device.index or 0]
    return "cpu", 1
