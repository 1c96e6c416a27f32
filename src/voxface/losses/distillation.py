"""Feature distillation from the image-to-3D expert (teacher) to the student (CMP paper Eq. 5–6, supp. §H).

Each distiller compares the student's and the teacher's intermediate features — a list of tensors,
(B, C, H, W) maps or (B, D) vectors, in the same order for both — and returns a scalar summed over
the feature pairs. Distillers with learnable parts (CRD's projections, VID's regressors) are
``nn.Module`` parameters trained with the student. Select one by name with :func:`create_distiller`.

Registered (kind ``distiller`` of :mod:`voxface.models.registry`; ``DISTILLERS`` lists them):
    vanilla      Hinton et al. 2015: KL between temperature-softened features used as logits, · T².
    attention    Zagoruyko & Komodakis 2017: L2 between normalised attention maps (mean over channels
                 of squared activations; a vector's attention is its normalised squared entries).
    sp           Tung & Mori 2019, similarity-preserving: ‖G_s − G_t‖²_F / B², G = row-normalised F Fᵀ.
    cc           Peng et al. 2019, correlation congruence: ‖C_s − C_t‖²_F / B², C = Gaussian-RBF kernel
                 (2nd-order Taylor expansion, γ = 0.4) between L2-normalised features.
    rkd          Park et al. 2019, relational KD: 25 · Huber(distance potentials) + 50 · Huber(angles).
    crd          Tian et al. 2020, contrastive representation distillation with the other items of the
                 batch as negatives (InfoNCE on 128-d projections, temperature 0.07), no memory bank.
    vid          Ahn et al. 2019, variational information distillation: Gaussian negative log-likelihood
                 of the teacher feature under a mean regressed from the student and a learned variance.
    pkt          Passalis & Tefas 2018 (CMP Eq. 5–6): cosine similarities shifted to [0, 1], rows made
                 conditional probabilities, KL(teacher ‖ student).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import VoxfaceError
from ..models.registry import available, create, register

EPS = 1e-7
DISTILLER = "distiller"
"""The registry kind of the distillers (:mod:`voxface.models.registry`)."""


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


# ------------------------------------------------------------------------------- pairwise losses
def pkt_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Probabilistic knowledge transfer (paper Eq. 5–6) of (B, ...) features.

    p_ij = (cos(t_i, t_j) + 1) / 2 normalised over j (the same for q with the student);
    loss = mean over the B×B entries of p_ij · log(p_ij / q_ij) (the PKT authors' convention).
    """
    def conditional(x):
        x = F.normalize(_flat(x), dim=1, eps=eps)
        sim = (x @ x.T + 1.0) / 2.0
        return sim / sim.sum(1, keepdim=True)

    p, q = conditional(teacher), conditional(student)
    return (p * torch.log((p + eps) / (q + eps))).mean()


def vanilla_kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """Hinton KD on (B, ...) features used as logits: T² · mean_b KL(softmax(t/T) ‖ softmax(s/T))."""
    log_q = F.log_softmax(_flat(student) / temperature, dim=1)
    p = F.softmax(_flat(teacher) / temperature, dim=1)
    return F.kl_div(log_q, p, reduction="batchmean") * temperature ** 2


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H·W) L2-normalised mean over channels of x²; (B, D) -> (B, D) normalised x²."""
    a = x.pow(2).mean(1).flatten(1) if x.dim() == 4 else x.pow(2)
    return F.normalize(a, dim=1)


def attention_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Attention transfer: mean over the batch and positions of (a_s − a_t)²."""
    return (attention_map(student) - attention_map(teacher)).pow(2).mean()


def similarity_preserving_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """‖G_s − G_t‖²_F / B² with G = row-L2-normalised F Fᵀ of (B, ...) features."""
    def gram(x):
        x = _flat(x)
        return F.normalize(x @ x.T, dim=1)

    b = student.shape[0]
    return (gram(student) - gram(teacher)).pow(2).sum() / b ** 2


def correlation_congruence_loss(student: torch.Tensor, teacher: torch.Tensor, gamma: float = 0.4,
                                order: int = 2) -> torch.Tensor:
    """‖C_s − C_t‖²_F / B², C_ij = Σ_{p≤order} e^{−2γ} (2γ)^p / p! (f_iᵀ f_j)^p on L2-normalised f.

    This is the Taylor expansion of the Gaussian kernel exp(−γ‖f_i − f_j‖²) for unit vectors.
    """
    def kernel(x):
        x = F.normalize(_flat(x), dim=1)
        dot = x @ x.T
        return sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * dot ** p for p in range(order + 1))

    b = student.shape[0]
    return (kernel(student) - kernel(teacher)).pow(2).sum() / b ** 2


def rkd_loss(student: torch.Tensor, teacher: torch.Tensor, distance_weight: float = 25.0,
             angle_weight: float = 50.0) -> torch.Tensor:
    """Relational KD: Huber between mean-normalised pairwise distances plus Huber between the
    cosines of the angles of all triplets (i, j, k) at j."""
    def distances(x):
        d = torch.cdist(x, x)
        return d / d[d > 0].mean().clamp_min(EPS)

    def angles(x):
        e = F.normalize(x[None, :, :] - x[:, None, :], dim=2)      # e[j, i] = unit(x_i − x_j)
        return torch.bmm(e, e.transpose(1, 2)).flatten()            # cos of angle i-j-k

    s, t = _flat(student), _flat(teacher)
    with torch.no_grad():
        td, ta = distances(t), angles(t)
    return (distance_weight * F.smooth_l1_loss(distances(s), td)
            + angle_weight * F.smooth_l1_loss(angles(s), ta))


# ------------------------------------------------------------------------------- distillers
class Distiller(nn.Module):
    """Sum over feature pairs of one pairwise loss; subclasses with learnable parts define :meth:`pair`.

    Args:
        student_dims, teacher_dims: per feature, the flattened size (C·H·W or D) of one item.
        pairwise: the loss of one (student, teacher) feature pair, for a distiller without parameters.
        default_weight: its weight in the overall loss (the class's when None).
        name: its registered name; ``same_size``: it compares the features element-wise, so their
            sizes must be equal.
    """

    default_weight = 1.0

    def __init__(self, student_dims: Sequence[int], teacher_dims: Sequence[int],
                 pairwise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 default_weight: float | None = None, name: str = "", same_size: bool = False):
        super().__init__()
        if len(student_dims) != len(teacher_dims):
            raise VoxfaceError("student and teacher must expose the same number of features to distil")
        self.student_dims, self.teacher_dims = list(student_dims), list(teacher_dims)
        if same_size and self.student_dims != self.teacher_dims:
            raise VoxfaceError(f"distiller {name} needs student and teacher features of equal size, got "
                               f"{self.student_dims} and {self.teacher_dims}; give the student the expert's "
                               "width, or use pkt, sp, cc, rkd, crd or vid")
        self.pairwise = pairwise
        if default_weight is not None:
            self.default_weight = default_weight

    def pair(self, index: int, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return self.pairwise(student, teacher)

    def forward(self, student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
        """Scalar float32 loss; teacher features are treated as constants.

        It is computed in float32 with autocast off, whatever the training precision: these losses
        compare small differences of similarities and are then weighted up (PKT by 10,000), which
        bf16 or fp16 rounding would swamp.
        """
        with torch.autocast(device_type=student[0].device.type, enabled=False):
            return sum(self.pair(i, s.float(), t.detach().float()) for i, (s, t) in enumerate(zip(student, teacher)))


def _parameter_free(name: str, pairwise: Callable, default_weight: float, same_size: bool = False) -> None:
    """Register the distiller ``name``: ``pairwise`` on every feature pair, weighted ``default_weight``."""
    register(name, kind=DISTILLER)(functools.partial(Distiller, pairwise=pairwise, default_weight=default_weight,
                                                     name=name, same_size=same_size))


_parameter_free("vanilla", vanilla_kd_loss, 1.0, same_size=True)
_parameter_free("attention", attention_loss, 1000.0, same_size=True)
_parameter_free("sp", similarity_preserving_loss, 3000.0)
_parameter_free("cc", correlation_congruence_loss, 1000.0)
_parameter_free("rkd", rkd_loss, 1.0)
_parameter_free("pkt", pkt_loss, 10000.0)


@register("crd", kind=DISTILLER)
class ContrastiveRD(Distiller):
    default_weight = 0.8
    """CRD with in-batch negatives: linear projections of both features to ``dim`` (L2-normalised);
    the student's item i must pick the teacher's item i among the batch (InfoNCE, temperature τ)."""

    def __init__(self, student_dims, teacher_dims, dim: int = 128, temperature: float = 0.07):
        super().__init__(student_dims, teacher_dims)
        self.student_heads = nn.ModuleList(nn.Linear(d, dim) for d in self.student_dims)
        self.teacher_heads = nn.ModuleList(nn.Linear(d, dim) for d in self.teacher_dims)
        self.temperature = temperature

    def pair(self, index, student, teacher):
        s = F.normalize(self.student_heads[index](_flat(student)), dim=1)
        t = F.normalize(self.teacher_heads[index](_flat(teacher)), dim=1)
        logits = s @ t.T / self.temperature
        labels = torch.arange(len(s), device=s.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@register("vid", kind=DISTILLER)
class VariationalID(Distiller):
    default_weight = 1.0
    """VID: teacher t ~ N(μ(s), σ²) per element; μ a linear map of the student feature, σ² =
    softplus(α) + ε learned per element; loss = mean of ½(log σ² + (t − μ)²/σ²)."""

    def __init__(self, student_dims, teacher_dims, min_variance: float = 1e-3):
        super().__init__(student_dims, teacher_dims)
        self.means = nn.ModuleList(nn.Linear(s, t) for s, t in zip(self.student_dims, self.teacher_dims))
        self.log_scales = nn.ParameterList(nn.Parameter(torch.full((t,), 2.0)) for t in self.teacher_dims)
        self.min_variance = min_variance

    def pair(self, index, student, teacher):
        mu = self.means[index](_flat(student))
        variance = F.softplus(self.log_scales[index]) + self.min_variance
        return 0.5 * (torch.log(variance) + (_flat(teacher) - mu).pow(2) / variance).mean()


DISTILLERS = tuple(available(DISTILLER))
"""The registered distillers. Each class's ``default_weight`` is its weight in the overall loss: PKT's
10,000 is CMP's; the others follow their papers' usual settings (AT β = 1000, SP γ = 3000, CRD 0.8) or
are of order one."""


def create_distiller(name: str, student_dims: Sequence[int], teacher_dims: Sequence[int]) -> tuple[Distiller, float]:
    """The distiller registered as ``name`` and its default weight; VoxfaceError for an unknown name."""
    distiller = create(name, DISTILLER, student_dims=student_dims, teacher_dims=teacher_dims)
    return distiller, distiller.default_weight
