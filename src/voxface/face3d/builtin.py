"""The built-in morphable model: a procedural adult head whose components are anthropometric.

``build_builtin_model()`` needs no file. It builds, deterministically and in well under a
second, a triangulated surface of the front and sides of an adult head (forehead, eyes, nose,
lips, chin, cheeks, ears, the skull to behind the ears; no back of the head and no neck) in
millimetres, in the MorphableModel frame (x = subject's left, y up, z towards the camera; y = 0
is the eye line). docs/builtin_model.md describes the construction and every figure's source.

How it is built:

1. A *base shell*: at each height y the horizontal cross-section is a super-ellipse around
   (x = 0, z = z0(y)) with half-width A(y), front depth C(y) and back depth B(y)
   (:data:`_PROFILE`). The surface is parametrised by the polar angle phi of the cross-section
   and the height y; the chin and jaw line are the lower boundary ``y >= jaw(phi)``.
2. A *relief* on top of the shell: smooth bumps and hollows along z for the brow ridge, orbits,
   eyeballs, nose, cheekbones, lips and chin, and along x for the ears.
3. Vertices are sampled on the (phi, y) domain, densest (1.6 mm) around the eyes, brows, nose
   tip and lips, and Delaunay-triangulated there, with two vertex rows along the lip contact
   line so that the jaw can open the mouth. Every anthropometric point and every iBUG-68
   landmark is a vertex placed at its designed frontal position.
4. Each shape component is a Gaussian radial-basis warp anchored on anthropometric points: the
   two points of its measurement move along the line joining them so that +1 SD changes that
   distance by exactly the component's SD (mm); listed neighbours follow or stay fixed, and the
   warp interpolates smoothly in between. The coefficients are within-sex z-scores.

Shape components: mean (SD) in mm of North-American-white (NAW) young adults; F94 = Farkas
1994, *Anthropometry of the Head and Face* (2nd ed.), NAW norms for 19-25 y, the reference
group that Farkas, Katic & Forrest 2005 (J Craniofac Surg 16:615) compare other groups with.
The figures are rounded approximations of those norms (see docs/builtin_model.md). SD = mean
of the two sexes' SDs; ``gender_offset`` = (male mean - female mean) / SD.

=========================  ========  ============  ============  ======
component                  points    male          female        source
=========================  ========  ============  ============  ======
head_breadth               eu-eu     151.1 (5.5)   144.0 (5.3)   F94
skull_base_width           t-t       145.0 (5.2)   138.0 (5.0)   F94
forehead_width             ft-ft     112.5 (4.9)   108.0 (4.5)   F94
face_width                 zy-zy     137.5 (5.0)   130.0 (4.8)   F94
mandible_width             go-go     106.0 (5.6)    97.0 (5.0)   F94
face_height                n-gn      121.3 (6.8)   112.0 (5.2)   F94
nose_height                n-sn       54.8 (3.3)    50.6 (3.1)   F94
upper_lip_height           sn-sto     22.4 (2.1)    19.8 (1.9)   F94
lower_lip_height           sto-sl     19.4 (2.0)    18.0 (1.8)   F94
chin_height                sl-gn      26.4 (3.3)    23.0 (2.8)   F94
forehead_height            n-tr       65.0 (6.5)    61.0 (5.8)   F94
biocular_width             ex-ex      91.2 (3.2)    87.8 (3.2)   F94
intercanthal_width         en-en      33.3 (2.7)    31.8 (2.3)   F94
eye_fissure_height         ps-pi      10.8 (1.1)    10.9 (1.2)   F94
nose_width                 al-al      34.9 (2.1)    31.4 (2.0)   F94
nasal_tip_protrusion       sn-prn     20.0 (2.0)    19.1 (1.7)   F94
mouth_width                ch-ch      53.3 (3.3)    50.2 (3.2)   F94
upper_vermilion_height     ls-sto      8.9 (1.5)     8.4 (1.3)   F94
lower_vermilion_height     sto-li     10.4 (1.8)     9.7 (1.6)   F94
ear_length                 sa-sba     62.4 (3.6)    58.5 (3.4)   F94
ear_width                  pra-pa     35.5 (2.3)    32.6 (2.1)   F94
upper_face_depth           t-n       120.0 (4.5)   111.5 (4.2)   F94
lower_face_depth           t-gn      141.0 (6.0)   128.0 (5.5)   F94
=========================  ========  ============  ============  ======

Expression components (design choices, not measurements): ``smile``, ``jaw_open``,
``brow_raise``, ``lip_pucker``; at +1 SD the mouth corners rise ~3 mm and widen ~3 mm, the chin
drops 10 mm (along its arc), the brows rise 4-5 mm, the mouth corners move 5 mm inwards.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .morphable_model import MorphableModel

# ============================================================================ anthropometry


@dataclass(frozen=True)
class _Component:
    """One shape component: an anthropometric distance and how the face deforms along it.

    ``kind`` says how the measurement's points (a, b) move at +1 SD: ``"split"`` moves a and b
    apart by SD/2 each along a->b; ``"line"`` keeps a and moves b by SD along a->b;
    ``"sagittal"`` keeps a and moves the midline point b along a->b projected on the
    midsagittal plane until |ab| grows by SD. Points in ``follow``
    move by the given fraction of b's displacement (mirrored for the other side); points in
    ``fixed`` stay put; ``sigma`` (mm) is the width of the Gaussian warp.
    """

    name: str
    a: str
    b: str
    male: tuple[float, float]
    female: tuple[float, float]
    source: str
    kind: str
    sigma: float
    follow: tuple[tuple[str, float], ...] = ()
    fixed: tuple[str, ...] = ()

    @property
    def sd(self) -> float:
        """Pooled within-sex SD (mm): the mean of the male and female SDs."""
        return (self.male[1] + self.female[1]) / 2.0

    @property
    def gender_offset(self) -> float:
        """(male mean - female mean) / pooled SD."""
        return (self.male[0] - self.female[0]) / self.sd


_FARKAS_1994 = "Farkas 1994, Anthropometry of the Head and Face, 2nd ed., NAW norms 19-25 y"

_COMPONENTS: tuple[_Component, ...] = (
    _Component("head_breadth", "eu_R", "eu_L", (151.1, 5.5), (144.0, 5.3), _FARKAS_1994, "split",
               45.0, follow=(("t_L", 0.5), ("ft_L", 0.3)), fixed=("g", "n", "ex_L", "zy_L")),
    _Component("skull_base_width", "t_R", "t_L", (145.0, 5.2), (138.0, 5.0), _FARKAS_1994,
               "split", 22.0, follow=(("sa_L", 1.0), ("sba_L", 1.0), ("pa_L", 1.0),
                                      ("er_L", 0.5)), fixed=("zy_L", "ex_L", "go_L", "eu_L")),
    _Component("forehead_width", "ft_R", "ft_L", (112.5, 4.9), (108.0, 4.5), _FARKAS_1994,
               "split", 22.0, follow=(("fr_L", 0.8),), fixed=("g", "tr", "ex_L", "eu_L")),
    _Component("face_width", "zy_R", "zy_L", (137.5, 5.0), (130.0, 4.8), _FARKAS_1994, "split",
               20.0, follow=(("cr_L", 0.4),), fixed=("ex_L", "al_L", "t_L", "go_L", "ft_L")),
    _Component("mandible_width", "go_R", "go_L", (106.0, 5.6), (97.0, 5.0), _FARKAS_1994, "split",
               22.0, follow=(("jaw11_L", 0.6), ("jaw13_L", 0.5)),
               fixed=("gn", "ch_L", "t_L", "zy_L")),
    _Component("face_height", "n", "gn", (121.3, 6.8), (112.0, 5.2), _FARKAS_1994, "line", 30.0,
               follow=(("pg", 1.0), ("sl", 0.9), ("jaw9_L", 0.95), ("jaw11_L", 0.7),
                       ("li", 0.65), ("sto", 0.55), ("sto_low", 0.55), ("ch_L", 0.55), ("ls", 0.45),
                       ("sn", 0.3), ("nose35_L", 0.3), ("al_L", 0.25)),
               fixed=("g", "en_L", "ex_L", "go_L")),
    _Component("nose_height", "n", "sn", (54.8, 3.3), (50.6, 3.1), _FARKAS_1994, "line", 13.0,
               follow=(("prn", 0.9), ("al_L", 0.9), ("nose29", 0.6)),
               fixed=("g", "en_L", "ch_L", "ls")),
    _Component("upper_lip_height", "sn", "sto", (22.4, 2.1), (19.8, 1.9), _FARKAS_1994, "line",
               16.0, follow=(("ch_L", 1.0), ("li", 1.0), ("sto_low", 1.0), ("ls", 0.7),
                             ("sl", 1.0)), fixed=("al_L", "prn", "cr_L")),
    _Component("lower_lip_height", "sto_low", "sl", (19.4, 2.0), (18.0, 1.8), _FARKAS_1994, "line",
               13.0, follow=(("pg", 1.0), ("li", 0.6)), fixed=("sto", "ch_L")),
    _Component("chin_height", "sl", "gn", (26.4, 3.3), (23.0, 2.8), _FARKAS_1994, "line", 14.0,
               follow=(("pg", 0.6), ("jaw9_L", 0.8)), fixed=("li", "ch_L", "jaw11_L")),
    _Component("forehead_height", "n", "tr", (65.0, 6.5), (61.0, 5.8), _FARKAS_1994, "line", 28.0,
               fixed=("g", "en_L", "ex_L", "brow24_L", "ft_L")),
    _Component("biocular_width", "ex_R", "ex_L", (91.2, 3.2), (87.8, 3.2), _FARKAS_1994, "split",
               9.0, follow=(("eye44_L", 0.6), ("eye46_L", 0.6)), fixed=("en_L", "brow26_L")),
    _Component("intercanthal_width", "en_R", "en_L", (33.3, 2.7), (31.8, 2.3), _FARKAS_1994,
               "split", 12.0, follow=(("ex_L", 1.0), ("ps_L", 1.0), ("pi_L", 1.0),
                                      ("eye43_L", 1.0), ("eye47_L", 1.0)), fixed=("al_L",)),
    _Component("eye_fissure_height", "pi_L", "ps_L", (10.8, 1.1), (10.9, 1.2), _FARKAS_1994,
               "split", 6.0, follow=(("eye43_L", 0.8), ("eye47_L", -0.8)),
               fixed=("en_L", "ex_L", "brow24_L")),
    _Component("nose_width", "al_R", "al_L", (34.9, 2.1), (31.4, 2.0), _FARKAS_1994, "split", 9.0,
               follow=(("nose35_L", 0.8),), fixed=("prn", "sn", "en_L", "ch_L")),
    _Component("nasal_tip_protrusion", "sn", "prn", (20.0, 2.0), (19.1, 1.7), _FARKAS_1994,
               "line", 11.0, follow=(("nose29", 0.5),), fixed=("al_L", "n", "ls")),
    _Component("mouth_width", "ch_R", "ch_L", (53.3, 3.3), (50.2, 3.2), _FARKAS_1994, "split",
               10.0, follow=(("mouth53_L", 0.5), ("mouth55_L", 0.5)),
               fixed=("al_L", "cr_L", "sn")),
    _Component("upper_vermilion_height", "sto", "ls", (8.9, 1.5), (8.4, 1.3), _FARKAS_1994,
               "line", 5.0, follow=(("mouth52_L", 0.9), ("mouth53_L", 0.5)),
               fixed=("ch_L", "sn")),
    _Component("lower_vermilion_height", "sto_low", "li", (10.4, 1.8), (9.7, 1.6), _FARKAS_1994,
               "line", 5.0, follow=(("mouth56_L", 0.9), ("mouth55_L", 0.5)),
               fixed=("ch_L", "sl")),
    _Component("ear_length", "sba_L", "sa_L", (62.4, 3.6), (58.5, 3.4), _FARKAS_1994, "split",
               16.0, fixed=("t_L", "er_L")),
    _Component("ear_width", "pra_L", "pa_L", (35.5, 2.3), (32.6, 2.1), _FARKAS_1994, "split",
               12.0, fixed=("sa_L", "sba_L")),
    _Component("upper_face_depth", "t_L", "n", (120.0, 4.5), (111.5, 4.2), _FARKAS_1994,
               "sagittal", 40.0, follow=(("g", 1.0), ("nose27", 1.0), ("prn", 1.0), ("en_L", 0.8), ("sn", 0.9)),
               fixed=("t_L", "sa_L", "sba_L", "eu_L", "go_L")),
    _Component("lower_face_depth", "t_L", "gn", (141.0, 6.0), (128.0, 5.5), _FARKAS_1994,
               "sagittal", 26.0, follow=(("pg", 1.0), ("sl", 0.9), ("jaw9_L", 0.8), ("li", 0.5)),
               fixed=("t_L", "go_L", "sn", "al_L")),
)

# ============================================================================ base shell

_PROFILE_Y = np.array([121.0, 112, 100, 85, 65, 45, 25, 5, -15, -35, -55, -72, -88, -100, -112])
"""Heights (mm above the eye line) of the rows of :data:`_PROFILE`."""

_PROFILE = {
    # half-width A, centre z0, front depth C, back depth B, super-ellipse exponent
    "A": np.array([22.0, 46, 60, 69, 73.5, 74.5, 74, 72.5, 71.5, 69.5, 65, 61, 56, 47, 32]),
    "z0": np.array([-93.0, -93, -91, -89, -87, -85, -83, -80, -77, -71, -62, -50, -34, -20, -8]),
    "C": np.array([18.0, 50, 72, 89, 100, 106, 107, 101, 98, 94, 85, 71, 50, 35, 16]),
    "B": np.array([18.0, 48, 66, 80, 90, 95, 97, 96, 93, 88, 78, 64, 50, 38, 22]),
    "n": np.array([2.0, 2.2, 2.3, 2.4, 2.5, 2.5, 2.5, 2.5, 2.4, 2.3, 2.2, 2.1, 2.0, 2.0, 2.0]),
}

_Y_TOP = 118.0
_PHI_MAX = math.radians(132.0)
_R_PARAM = 95.0
"""mm per radian of phi in the sampling domain (arc length at the front of the face)."""

_JAW_PHI = np.radians([0.0, 15, 30, 45, 60, 75, 90, 100, 108, 116, 124, 132])
_JAW_Y = np.array([-112.0, -111.5, -109.5, -105, -98, -91, -85, -80, -72, -58, -50, -47])
"""Lower boundary of the surface (mandible border, then the ramus and below the ears)."""

_EAR = {"phi": math.radians(97.0), "y": -17.0, "half_width": math.radians(14.5),
        "half_height": 31.0}
"""Ear centre and half extents on the (phi, y) domain (ear length ~62 mm, width ~34 mm)."""


@functools.cache
def _curve_interpolator(knots_x: tuple, knots_y: tuple):
    from scipy.interpolate import PchipInterpolator

    order = np.argsort(knots_x)
    return PchipInterpolator(np.asarray(knots_x)[order], np.asarray(knots_y)[order])


def _pchip(x_knots: np.ndarray, y_knots: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Shape-preserving cubic (PCHIP) interpolation through the knots (cached per knot set)."""
    return _curve_interpolator(tuple(np.asarray(x_knots, float)),
                               tuple(np.asarray(y_knots, float)))(x)


def _profile(y: np.ndarray) -> dict[str, np.ndarray]:
    """Cross-section parameters at heights ``y`` (N,) -> name -> (N,)."""
    return {k: _pchip(_PROFILE_Y, v, y) for k, v in _PROFILE.items()}


def _jaw_y(phi: np.ndarray) -> np.ndarray:
    """(N,) lowest height of the surface at angles ``phi`` (N,) radians (smooth at the chin)."""
    knots_phi = np.concatenate([-_JAW_PHI[:0:-1], _JAW_PHI])
    knots_y = np.concatenate([_JAW_Y[:0:-1], _JAW_Y])
    return _pchip(knots_phi, knots_y, phi)


def _shell_xz(phi: np.ndarray, profile: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """x and z (N,) of the base shell at angles ``phi`` on the cross-sections ``profile``."""
    c, s = np.cos(phi), np.sin(phi)
    depth = np.where(c >= 0, profile["C"], profile["B"])
    n = profile["n"]
    r = (np.abs(c / depth) ** n + np.abs(s / profile["A"]) ** n) ** (-1.0 / n)
    return r * s, profile["z0"] + r * c


def _base_shell(phi: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, 3) points of the base shell at polar angle ``phi`` (N,) and height ``y`` (N,)."""
    x, z = _shell_xz(phi, _profile(y))
    return np.stack([x, y, z], axis=-1)


def _phi_at_x(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) front-side angle whose base-shell point has lateral coordinate ``x`` at height ``y``."""
    x = np.asarray(x, dtype=np.float64)
    sign = np.sign(x)
    target = np.abs(x)
    profile = _profile(np.asarray(y, dtype=np.float64))
    low, high = np.zeros_like(target), np.full_like(target, math.pi / 2)
    for _ in range(40):
        mid = (low + high) / 2
        beyond = _shell_xz(mid, profile)[0] > target
        high = np.where(beyond, mid, high)
        low = np.where(beyond, low, mid)
    return sign * (low + high) / 2


# ============================================================================ relief


def _gauss(u):
    return np.exp(-0.5 * u * u)


def _window(u, half, soft):
    """Smooth box: ~1 for |u| < half, ~0 beyond, transition width ``soft``."""
    return 0.5 * (1.0 - np.tanh((np.abs(u) - half) / soft))


_NOSE_Y = np.array([14.0, 7, 0, -8, -16, -24, -31, -36, -39, -42, -44.5, -46.5, -49, -53])
_NOSE_P = np.array([0.0, 1.0, 4.5, 10, 15.5, 20.5, 24.5, 26.5, 26.0, 22.5, 16, 9, 3, 0])
_NOSE_W = np.array([8.0, 7.5, 7.0, 7.0, 7.5, 8.5, 9.5, 10.5, 11.0, 11.5, 11.5, 11.0, 10, 10])
"""Nose: height y -> protrusion above the shell and half-width of the dorsum (mm)."""

_LIP_Y = np.array([-47.0, -52, -57, -61, -64.5, -68, -71.5, -75, -79, -84, -88, -93, -100,
                   -106, -112])
_LIP_P = np.array([8.0, 8.5, 9.5, 10.5, 10.0, 6.5, 9.0, 10.0, 8.5, 4.5, 3.0, 4.5, 7.5, 6.0,
                   3.5])
"""Lips and chin: height y -> protrusion above the shell at the midline (mm)."""


def _front_relief(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) forward (z) relief of the face at frontal coordinates (x, y), mm."""
    ax = np.abs(x)
    brow = 3.5 * _gauss((y - 17.0) / 6.5) * _window(x, 44.0, 8.0)
    glabella = 2.0 * _gauss(x / 10.0) * _gauss((y - 14.0) / 7.0)
    orbit = -13.0 * _gauss((ax - 30.0) / 13.0) * _gauss((y - 2.0) / 10.0)
    eyeball = 13.0 * _gauss((ax - 31.0) / 8.0) * _gauss((y - 0.5) / 6.0)
    nose_p = np.where((y < 14.0) & (y > -53.0), _pchip(_NOSE_Y, _NOSE_P, y), 0.0)
    nose_w = _pchip(_NOSE_Y, _NOSE_W, y)
    nose = nose_p * np.exp(-((x / nose_w) ** 2) * 1.4)
    alae = 7.0 * _gauss((ax - 11.5) / 4.5) * _gauss((y + 40.5) / 4.5)
    alar_crease = -2.0 * _gauss((ax - 18.5) / 2.5) * _gauss((y + 40.0) / 6.0)
    cheekbone = 5.0 * _gauss((ax - 43.0) / 13.0) * _gauss((y + 20.0) / 11.0)
    lips_p = np.where((y < -47.0) & (y > -112.0), _pchip(_LIP_Y, _LIP_P, y), 0.0)
    mouth_half = np.interp(y, [-92.0, -84.0], [17.0, 22.0])
    lips = lips_p * np.exp(-((x / mouth_half) ** 4))
    philtrum = -0.8 * _gauss(x / 2.5) * _gauss((y + 53.0) / 4.0)
    nasolabial = -1.5 * _gauss((ax - 24.0 + 0.25 * (y + 50.0)) / 3.0) * _window(y + 55.0, 13.0, 4.0)
    return (brow + glabella + orbit + eyeball + nose + alae + alar_crease + cheekbone + lips
            + philtrum + nasolabial)


def _ear_relief(phi: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) outward (along +-x) relief of the ears at (phi, y), mm."""
    du = (np.abs(phi) - _EAR["phi"]) / _EAR["half_width"]
    dv = (y - _EAR["y"]) / _EAR["half_height"]
    d = np.sqrt(du * du + dv * dv)
    flap = 12.0 * _window(d, 0.8, 0.08) * np.clip(0.55 + 0.5 * du, 0.0, 1.0)
    rim = 4.0 * _gauss((d - 0.82) / 0.08)
    concha = -6.0 * _gauss(np.hypot(du + 0.15, dv + 0.1) / 0.28)
    return np.clip(flap + rim + concha, 0.0, None) * (d < 1.2)


def _front_weight(phi: np.ndarray) -> np.ndarray:
    """1 on the face (|phi| < 60 deg), 0 from |phi| = 81 deg back (keeps facial relief off the
    sides and back of the head), smooth in between."""
    t = np.clip((np.cos(phi) - 0.15) / 0.35, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _surface(phi: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, 3) mean-face points at domain coordinates (phi, y)."""
    points = _base_shell(phi, y)
    points[:, 2] += _front_relief(points[:, 0], y) * _front_weight(phi)
    points[:, 0] += np.sign(phi) * _ear_relief(phi, y)
    return points


# ============================================================================ named points

_LIP_Y_CONTACT = -68.0
"""Height of the lip contact line (stomion, mouth corners)."""
_LIP_GAP = 0.35
"""Half distance (mm) between the upper-lip and lower-lip vertex rows along the contact line."""
_MOUTH_CORNER_X = 26.0
"""Half mouth width ch-ch (mm)."""

# kind "front": (x, y) frontal coordinates; "side": (phi degrees, y); "jaw": (phi degrees,).
# Names ending in _L are on the subject's left (x > 0) and get a mirrored _R twin.
_POINTS: dict[str, tuple] = {
    "tr": ("front", 0.0, 69.0), "g": ("front", 0.0, 17.0), "n": ("front", 0.0, 7.0),
    "nose27": ("front", 0.0, 1.0), "nose28": ("front", 0.0, -11.0), "nose29": ("front", 0.0, -23.0),
    "prn": ("front", 0.0, -36.0), "sn": ("front", 0.0, -46.5), "ls": ("front", 0.0, -59.5),
    "sto": ("front", 0.0, _LIP_Y_CONTACT + _LIP_GAP),
    "sto_low": ("front", 0.0, _LIP_Y_CONTACT - _LIP_GAP), "li": ("front", 0.0, -79.0),
    "sl": ("front", 0.0, -87.0), "pg": ("front", 0.0, -100.0), "gn": ("jaw", 0.0),
    "en_L": ("front", 16.3, 0.0), "ex_L": ("front", 45.0, 0.5),
    "eye43_L": ("front", 25.5, 4.4), "eye44_L": ("front", 36.5, 4.3),
    "eye46_L": ("front", 36.5, -3.4), "eye47_L": ("front", 25.5, -3.2),
    "ps_L": ("front", 31.0, 5.2), "pi_L": ("front", 31.0, -5.1),
    "brow22_L": ("front", 17.5, 17.5), "brow23_L": ("front", 27.5, 21.5),
    "brow24_L": ("front", 38.0, 23.5), "brow25_L": ("front", 48.5, 21.0),
    "brow26_L": ("front", 57.0, 15.0),
    "nose34_L": ("front", 6.5, -45.0), "nose35_L": ("front", 12.0, -43.5),
    "al_L": ("front", 16.5, -40.5),
    "ch_L": ("front", _MOUTH_CORNER_X, _LIP_Y_CONTACT), "mouth52_L": ("front", 6.5, -58.3),
    "mouth53_L": ("front", 16.5, -61.5), "mouth55_L": ("front", 16.0, -75.0),
    "mouth56_L": ("front", 8.0, -78.0), "mouth63_L": ("front", 8.0, _LIP_Y_CONTACT + _LIP_GAP),
    "mouth64_L": ("front", 21.5, _LIP_Y_CONTACT),
    "mouth65_L": ("front", 8.0, _LIP_Y_CONTACT - _LIP_GAP),
    "jaw9_L": ("front", 21.0, -107.5), "jaw10_L": ("front", 38.0, -99.0),
    "jaw11_L": ("front", 50.5, -86.0), "jaw12_L": ("front", 59.0, -70.0),
    "jaw13_L": ("front", 64.0, -53.0), "jaw14_L": ("front", 67.5, -34.0),
    "jaw15_L": ("front", 69.5, -16.0), "jaw16_L": ("front", 71.0, 3.0),
    "go_L": ("jaw", 100.0), "zy_L": ("front", 67.0, -14.0), "ft_L": ("front", 55.0, 30.0),
    "eu_L": ("side", 102.0, 40.0), "t_L": ("side", 83.5, -12.0),
    "sa_L": ("side", 97.0, 13.0), "sba_L": ("side", 97.0, -47.0),
    "pra_L": ("side", 83.0, -19.0), "pa_L": ("side", 110.0, -17.0),
    "fr_L": ("front", 53.0, 16.0), "cr_L": ("front", 46.0, -62.0), "er_L": ("front", 65.5, -44.0),
}

_LANDMARKS_LEFT: dict[int, str] = {
    8: "gn", 9: "jaw9_L", 10: "jaw10_L", 11: "jaw11_L", 12: "jaw12_L", 13: "jaw13_L",
    14: "jaw14_L", 15: "jaw15_L", 16: "jaw16_L",
    22: "brow22_L", 23: "brow23_L", 24: "brow24_L", 25: "brow25_L", 26: "brow26_L",
    27: "nose27", 28: "nose28", 29: "nose29", 30: "prn", 33: "sn", 34: "nose34_L", 35: "nose35_L",
    42: "en_L", 43: "eye43_L", 44: "eye44_L", 45: "ex_L", 46: "eye46_L", 47: "eye47_L",
    51: "ls", 52: "mouth52_L", 53: "mouth53_L", 54: "ch_L", 55: "mouth55_L", 56: "mouth56_L",
    57: "li", 62: "sto", 63: "mouth63_L", 64: "mouth64_L", 65: "mouth65_L", 66: "sto_low",
}
"""iBUG-68 landmarks on the midline and the subject's left (image right); the rest mirror them."""

IBUG_MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65])
"""iBUG-68 index of each landmark's mirror image (left <-> right)."""


def _mirror_name(name: str) -> str:
    return name[:-2] + "_R" if name.endswith("_L") else name


def _all_point_specs() -> dict[str, tuple]:
    specs = dict(_POINTS)
    for name, spec in _POINTS.items():
        if name.endswith("_L"):
            specs[_mirror_name(name)] = (spec[0], -spec[1], *spec[2:])
    return specs


def _spec_domain(spec: tuple) -> tuple[float, float]:
    """(phi, y) domain coordinates of a named-point spec."""
    kind = spec[0]
    if kind == "front":
        x, y = spec[1], spec[2]
        return float(_phi_at_x(np.array([x]), np.array([y]))[0]), y
    if kind == "side":
        return math.radians(spec[1]), spec[2]
    phi = math.radians(spec[1])
    return phi, float(_jaw_y(np.array([phi]))[0])


def _landmark_names() -> list[str]:
    names: list[str | None] = [None] * 68
    for index, name in _LANDMARKS_LEFT.items():
        names[index] = name
        names[IBUG_MIRROR[index]] = _mirror_name(name)
    return names  # type: ignore[return-value]


# ============================================================================ sampling


_FACE_SPACING = 3.6
_HEAD_SPACING = 10.0
_ZONES = (
    # (p_low, p_high, y_low, y_high, spacing) in mm on the (p = R * phi, y) domain, fine first
    (12.0, 53.0, -9.0, 27.0, 1.6),     # left eye and brow
    (-53.0, -12.0, -9.0, 27.0, 1.6),   # right eye and brow
    (-19.0, 19.0, -50.0, -32.0, 1.6),  # nose tip and nostrils
    (-31.0, 31.0, -82.0, -55.0, 1.6),  # lips
    (-66.0, 66.0, -114.0, 70.0, _FACE_SPACING),  # face and hairline
    (66.0, 140.0, -10.0, 62.0, 5.5),   # left temple and sideburn
    (-140.0, -66.0, -10.0, 62.0, 5.5),  # right temple and sideburn
    (-_R_PARAM * _PHI_MAX, _R_PARAM * _PHI_MAX, -120.0, _Y_TOP, _HEAD_SPACING),  # head
)
_EAR_SPACING = 3.0


def _lattice(p0, p1, y0, y1, h):
    """(N, 2) hexagonal lattice points with spacing ``h`` covering [p0, p1] x [y0, y1]."""
    dy = h * math.sqrt(3) / 2
    rows = np.arange(y0, y1 + 1e-9, dy)
    points = []
    for i, y in enumerate(rows):
        ps = np.arange(p0 + (h / 2 if i % 2 else 0.0), p1 + 1e-9, h)
        points.append(np.stack([ps, np.full_like(ps, y)], axis=1))
    return np.concatenate(points)


def _inside(points, box, margin):
    p0, p1, y0, y1 = box
    return ((points[:, 0] > p0 - margin) & (points[:, 0] < p1 + margin)
            & (points[:, 1] > y0 - margin) & (points[:, 1] < y1 + margin))


def _sample_domain(named: dict[str, tuple[float, float]]) -> np.ndarray:
    """(N, 2) (phi, y) sample points; the named points come first, in ``named``'s order."""
    special = np.array(list(named.values()), dtype=np.float64)
    special_p = np.stack([special[:, 0] * _R_PARAM, special[:, 1]], axis=1)
    slit = _mouth_slit_points()
    fixed = np.concatenate([special_p, slit])
    clouds = [_ear_lattice()]
    finer: list[tuple] = []
    for p0, p1, y0, y1, h in _ZONES:
        points = _lattice(p0, p1, y0, y1, h)
        keep = np.ones(len(points), dtype=bool)
        for box in finer:
            keep &= ~_inside(points, box, 0.6 * h)
        if h > _EAR_SPACING:
            keep &= ~_in_ear(points, margin=0.6 * h)
        clouds.append(points[keep])
        finer.append((p0, p1, y0, y1))
    cloud = np.concatenate(clouds)
    cloud = _clip_to_domain(cloud)
    cloud = cloud[~_near_mouth_slit(cloud)]
    cloud = _drop_near(cloud, fixed)
    boundary = _drop_near(_boundary_points(), fixed)
    cloud = _drop_near(cloud, boundary, radius_scale=0.5)
    points = np.concatenate([fixed, boundary, cloud])
    return np.stack([points[:, 0] / _R_PARAM, points[:, 1]], axis=1)


def _mouth_slit_points() -> np.ndarray:
    """Two close rows along the lip contact line (upper and lower lip), on the (p, y) domain."""
    named_x = [_POINTS[name][1] for name in ("mouth63_L", "mouth64_L")]
    xs = np.arange(1.6, _MOUTH_CORNER_X - 1.0, 1.6)
    xs = xs[np.all(np.abs(xs[:, None] - np.array(named_x)[None]) > 0.8, axis=1)]
    xs = np.concatenate([xs, -xs])
    rows = []
    for dy in (_LIP_GAP, -_LIP_GAP):
        y = np.full_like(xs, _LIP_Y_CONTACT + dy)
        rows.append(np.stack([_phi_at_x(xs, y) * _R_PARAM, y], axis=1))
    return np.concatenate(rows)


def _near_mouth_slit(points: np.ndarray) -> np.ndarray:
    """(N,) True for (p, y) points within 1 mm of the lip contact line (kept for its two rows)."""
    return ((np.abs(points[:, 1] - _LIP_Y_CONTACT) < 1.0)
            & (np.abs(points[:, 0]) < _MOUTH_CORNER_X + 1.0))


def _ear_lattice() -> np.ndarray:
    half_p = _EAR["half_width"] * _R_PARAM * 1.25
    half_y = _EAR["half_height"] * 1.25
    points = []
    for side in (1.0, -1.0):
        c = side * _EAR["phi"] * _R_PARAM
        grid = _lattice(c - half_p, c + half_p, _EAR["y"] - half_y, _EAR["y"] + half_y,
                        _EAR_SPACING)
        points.append(grid[_in_ear(grid, 0.0)])
    return np.concatenate(points)


def _in_ear(points: np.ndarray, margin: float) -> np.ndarray:
    du = (np.abs(points[:, 0]) / _R_PARAM - _EAR["phi"]) / _EAR["half_width"]
    dv = (points[:, 1] - _EAR["y"]) / _EAR["half_height"]
    grow = 1.2 + margin / _EAR["half_height"]
    return du * du + dv * dv < grow * grow


def _clip_to_domain(points: np.ndarray) -> np.ndarray:
    phi = points[:, 0] / _R_PARAM
    inside = ((np.abs(phi) < _PHI_MAX - 0.02) & (points[:, 1] < _Y_TOP - 1.0)
              & (points[:, 1] > _jaw_y(phi) + 1.0))
    return points[inside]


def _boundary_points() -> np.ndarray:
    """Points along the domain's edge: jaw line, sides, top; (N, 2) on the (p, y) domain."""
    p_max = _PHI_MAX * _R_PARAM
    front = np.arange(-66.0, 66.0 + 1e-9, _FACE_SPACING)
    back = np.arange(66.0 + _HEAD_SPACING, p_max, _HEAD_SPACING)
    p_jaw = np.concatenate([-back[::-1], front, back, [-p_max, p_max]])
    jaw = np.stack([p_jaw, _jaw_y(p_jaw / _R_PARAM)], axis=1)
    y_side = np.arange(_jaw_y(np.array([_PHI_MAX]))[0] + _HEAD_SPACING, _Y_TOP, _HEAD_SPACING)
    sides = np.concatenate([np.stack([np.full_like(y_side, s * p_max), y_side], axis=1)
                            for s in (-1.0, 1.0)])
    p_top = np.arange(-p_max, p_max + 1e-9, _HEAD_SPACING)
    top = np.stack([p_top, np.full_like(p_top, _Y_TOP)], axis=1)
    return np.concatenate([jaw, sides, top])


def _drop_near(points: np.ndarray, anchors: np.ndarray, radius_scale: float = 0.45) -> np.ndarray:
    """Remove ``points`` closer to an anchor than ``radius_scale`` x the local spacing."""
    from scipy.spatial import cKDTree

    spacing = _local_spacing(points)
    distance, _ = cKDTree(anchors).query(points)
    return points[distance > radius_scale * spacing]


def _local_spacing(points: np.ndarray) -> np.ndarray:
    spacing = np.full(len(points), _ZONES[-1][4])
    for p0, p1, y0, y1, h in reversed(_ZONES[:-1]):
        spacing[_inside(points, (p0, p1, y0, y1), 0.0)] = h
    spacing[_in_ear(points, 0.0)] = np.minimum(spacing[_in_ear(points, 0.0)], _EAR_SPACING)
    return spacing


def _triangulate(domain: np.ndarray) -> np.ndarray:
    """(F, 3) int32 Delaunay triangles of the (phi, y) domain, CCW seen from outside."""
    from scipy.spatial import Delaunay

    planar = np.stack([domain[:, 0] * _R_PARAM, domain[:, 1]], axis=1)
    # In the triangulation plane only, move everything above the lip contact line up and
    # everything below it down by 4 mm (tapering off beyond the mouth corners), so that
    # Delaunay joins the upper and lower slit rows to each other and to nothing else: the jaw
    # can then open the mouth along that line.
    warped = planar.copy()
    taper = np.clip(1.0 - (np.abs(planar[:, 0]) - _MOUTH_CORNER_X) / 8.0, 0.0, 1.0)
    warped[:, 1] += 4.0 * np.sign(planar[:, 1] - _LIP_Y_CONTACT) * taper
    triangles = Delaunay(warped).simplices
    a, b, c = (planar[triangles[:, i]] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    triangles = np.where((cross < 0)[:, None], triangles[:, [0, 2, 1]], triangles)
    centroid = (a + b + c) / 3.0
    in_domain = centroid[:, 1] > _jaw_y(centroid[:, 0] / _R_PARAM)  # drop hull bridges
    return triangles[(np.abs(cross) > 1e-9) & in_domain].astype(np.int32)


# ============================================================================ model assembly


def build_builtin_model() -> MorphableModel:
    """The built-in morphable model (name ``"builtin"``, units mm); deterministic, < 1 s.

    Returns:
        A MorphableModel with about 5,900 vertices, 23 anthropometric shape components,
        4 expression components, iBUG-68 landmarks, the five measurement pairs, the six regions,
        an albedo template and the gender offset. ``meta`` holds the anthropometric point
        vertices (``"points"``), each component's measurement and source (``"components"``)
        and the expression names.
    """
    specs = _all_point_specs()
    named = {name: _spec_domain(spec) for name, spec in specs.items()}
    domain = _sample_domain(named)
    vertex_of = {name: i for i, name in enumerate(named)}
    mean = _surface(domain[:, 0], domain[:, 1])
    triangles = _triangulate(domain)
    landmarks = np.array([vertex_of[name] for name in _landmark_names()], dtype=np.int64)
    shape_basis, shape_std = _shape_basis(mean, vertex_of)
    expression_basis, expression_std, expression_names = _expression_basis(mean, domain, vertex_of)
    return MorphableModel(
        name="builtin",
        mean=mean.astype(np.float32),
        shape_basis=shape_basis.astype(np.float32),
        shape_std=shape_std.astype(np.float32),
        triangles=triangles,
        landmarks68=landmarks,
        measurements={
            "OICD": (vertex_of["ex_R"], vertex_of["ex_L"]),
            "ER": (vertex_of["er_R"], vertex_of["er_L"]),
            "FR": (vertex_of["fr_R"], vertex_of["fr_L"]),
            "CR": (vertex_of["cr_R"], vertex_of["cr_L"]),
            "MR": (vertex_of["nose27"], vertex_of["pg"]),
        },
        regions=_regions(mean, _face_side(domain)),
        expression_basis=expression_basis.astype(np.float32),
        expression_std=expression_std.astype(np.float32),
        units="mm",
        albedo=_albedo(mean, domain).astype(np.float32),
        gender_offset=np.array([c.gender_offset for c in _COMPONENTS], dtype=np.float32),
        meta={
            "points": {name: int(i) for name, i in vertex_of.items()},
            "components": [{"name": c.name, "measurement": (c.a, c.b), "sd_mm": c.sd,
                            "male": c.male, "female": c.female, "source": c.source}
                           for c in _COMPONENTS],
            "expressions": expression_names,
            "description": "procedural head; shape components follow Farkas anthropometry",
        },
    )


# ============================================================================ components


def _rbf_field(mean: np.ndarray, centres: np.ndarray, values: np.ndarray,
               sigma: float) -> np.ndarray:
    """(V, 3) Gaussian RBF interpolation of ``values`` (C, 3) given at ``centres`` (C, 3).

    A control closer than sigma / 5 to an earlier one with the same value is redundant (the
    interpolant takes that value there anyway) and is dropped to keep the system well posed.
    """
    keep: list[int] = []
    for i in range(len(centres)):
        if not any(np.linalg.norm(centres[i] - centres[j]) < sigma / 5
                   and np.allclose(values[i], values[j]) for j in keep):
            keep.append(i)
    centres, values = centres[keep], values[keep]

    def kernel(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-0.5 * d2 / sigma**2)

    weights = np.linalg.solve(kernel(centres, centres), values)
    return kernel(mean, centres) @ weights


def _mirror_vector(v: np.ndarray) -> np.ndarray:
    return v * np.array([-1.0, 1.0, 1.0])


def _component_controls(c: _Component, mean: np.ndarray, vertex_of: dict[str, int]):
    """Control points (names) and their +1 SD displacements (C, 3) of component ``c``."""
    pa, pb = mean[vertex_of[c.a]], mean[vertex_of[c.b]]
    length = np.linalg.norm(pb - pa)
    u = (pb - pa) / length
    if c.kind == "split":
        moves = {c.a: -0.5 * c.sd * u, c.b: 0.5 * c.sd * u}
        lead = 0.5 * c.sd * u
    elif c.kind == "line":
        moves = {c.a: np.zeros(3), c.b: c.sd * u}
        lead = c.sd * u
    else:  # "sagittal": midline b moves along a->b without its x part until |ab| grows by SD
        d = pb - pa
        w = np.array([0.0, d[1], d[2]]) / math.hypot(d[1], d[2])
        # |d + t w| = length + sd  ->  t^2 + 2 t (d.w) + length^2 - (length + sd)^2 = 0
        dw = float(d @ w)
        t = -dw + math.sqrt(dw * dw + (length + c.sd) ** 2 - length**2)
        moves = {c.a: np.zeros(3), c.b: t * w}
        lead = moves[c.b]
    for name, fraction in c.follow:
        moves[name] = fraction * lead
    for name in c.fixed:
        moves.setdefault(name, np.zeros(3))
    for name in list(moves):  # mirror images of one-sided controls
        twin = _mirror_name(name)
        if twin != name and twin not in moves:
            moves[twin] = _mirror_vector(moves[name])
    return list(moves), np.array(list(moves.values()))


def _shape_basis(mean: np.ndarray, vertex_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(3V, K) unit-SD deformation fields and (K,) SDs (mm) of the anthropometric components."""
    columns = []
    for c in _COMPONENTS:
        names, values = _component_controls(c, mean, vertex_of)
        centres = mean[[vertex_of[n] for n in names]]
        field = _rbf_field(mean, centres, values, c.sigma)
        columns.append(field.reshape(-1) / c.sd)
    return np.stack(columns, axis=1), np.array([c.sd for c in _COMPONENTS])


_EXPRESSIONS = (
    # name, std (mm), sigma, {point: displacement per std (left side; mirrored)}
    ("smile", 5.0, 14.0, {"ch_L": (0.6, 0.6, -0.4), "mouth53_L": (0.3, 0.3, -0.1),
                          "mouth55_L": (0.3, 0.2, -0.1), "cr_L": (0.1, 0.35, 0.1),
                          "sn": (0, 0, 0), "al_L": (0, 0.05, 0), "ls": (0, 0.1, 0),
                          "li": (0, 0, 0), "pg": (0, 0, 0), "ex_L": (0, 0, 0)}),
    ("brow_raise", 5.0, 12.0, {"brow22_L": (0, 0.8, 0), "brow23_L": (0, 1.0, 0),
                               "brow24_L": (0, 1.0, 0), "brow25_L": (0, 0.9, 0),
                               "brow26_L": (0, 0.7, 0), "ps_L": (0, 0.15, 0),
                               "en_L": (0, 0, 0), "ex_L": (0, 0, 0), "pi_L": (0, 0, 0),
                               "tr": (0, 0.2, 0)}),
    ("lip_pucker", 5.0, 10.0, {"ch_L": (-1.0, 0, 0.5), "mouth53_L": (-0.5, 0, 0.6),
                               "mouth55_L": (-0.5, 0, 0.6), "ls": (0, 0, 0.6),
                               "li": (0, 0, 0.6), "sn": (0, 0, 0), "al_L": (0, 0, 0),
                               "pg": (0, 0, 0), "cr_L": (0, 0, 0)}),
)
_JAW_OPEN_STD = 10.0
"""Chin (gnathion) displacement (mm) of one SD of ``jaw_open``."""


def _expression_basis(mean: np.ndarray, domain: np.ndarray, vertex_of: dict[str, int]):
    """(3V, E) unit-std expression fields, (E,) stds, names."""
    columns, stds, names = [], [], []
    for name, std, sigma, moves in _EXPRESSIONS:
        full = {}
        for point, vector in moves.items():
            full[point] = np.array(vector, dtype=np.float64)
            twin = _mirror_name(point)
            if twin != point:
                full[twin] = _mirror_vector(full[point])
        centres = mean[[vertex_of[p] for p in full]]
        field = _rbf_field(mean, centres, np.array(list(full.values())), sigma)
        columns.append(field.reshape(-1))
        stds.append(std)
        names.append(name)
    columns.insert(1, _jaw_open_field(mean, domain, vertex_of).reshape(-1))
    stds.insert(1, _JAW_OPEN_STD)
    names.insert(1, "jaw_open")
    return np.stack(columns, axis=1), np.array(stds), names


def _jaw_open_field(mean: np.ndarray, domain: np.ndarray, vertex_of: dict[str, int]) -> np.ndarray:
    """(V, 3) jaw rotation about the temporomandibular axis; the chin moves by 1 mm.

    The mandible (below the lip contact line, then below a line rising from the mouth corners
    towards the ear lobes, and in front of the ramus, i.e. of the tragus) rotates about an
    x axis 5 cm below the tragi (the condyles' rotation plus their forward glide), so that the
    chin moves down and somewhat back; the lower lip follows less towards the mouth corners,
    so the mouth opens as an ellipse.
    """
    x, y, z = mean[:, 0], domain[:, 1], mean[:, 2]
    beyond = np.clip(np.abs(x) - _MOUTH_CORNER_X, 0.0, None)
    boundary = _LIP_Y_CONTACT + 0.55 * beyond
    softness = np.where(np.abs(x) < _MOUTH_CORNER_X, 0.05, 2.0 + 0.2 * beyond)
    below = 1.0 / (1.0 + np.exp(np.clip((y - boundary) / softness, -50, 50)))
    # the lower lip opens as an ellipse: less towards the corners, fully further down the chin
    across = np.sqrt(np.clip(1.0 - (x / _MOUTH_CORNER_X) ** 2, 0.0, 1.0))
    near_lips = np.exp(-(((y - _LIP_Y_CONTACT) / 12.0) ** 2))
    below *= 1.0 - (1.0 - across) * near_lips
    t = mean[vertex_of["t_L"]]
    in_front = 1.0 / (1.0 + np.exp(np.clip(-(z - t[2] - 6.0) / 5.0, -50, 50)))
    # rotation about the condyles plus their forward glide ~ a rotation about a lower axis
    centre = np.array([0.0, t[1] - 50.0, t[2] - 5.0])
    r = mean - centre
    rotation = np.stack([np.zeros_like(r[:, 0]), -r[:, 2], r[:, 1]], axis=1)  # omega = +x
    gn = vertex_of["gn"]
    return (below * in_front)[:, None] * rotation / np.linalg.norm(rotation[gn])


# ============================================================================ regions, albedo


def _face_side(domain: np.ndarray) -> np.ndarray:
    """(V,) True for vertices on the face side of the head (|phi| < 80 deg)."""
    return np.abs(domain[:, 0]) < math.radians(80.0)


def _regions(mean: np.ndarray, face: np.ndarray) -> dict[str, np.ndarray]:
    """The six regions, by frontal position on the face side, eyes first, then nose, mouth, cheeks.

    left/right_eye: within the ellipse centred on the eye (31, 1) with half-axes 19 x 11 mm;
    nose: |x| < 18 mm and -49 < y < 4 mm; mouth: ellipse centred (0, -68) with half-axes
    31 x 14 mm; cheeks: 20 < |x| < 60 and -62 < y < -12 mm; each excludes the regions before it.
    """
    x, y = mean[:, 0], mean[:, 1]
    taken = np.zeros(len(x), dtype=bool)
    regions = {}

    def claim(name, mask):
        mask = mask & face & ~taken
        taken[mask] = True
        regions[name] = np.flatnonzero(mask).astype(np.int64)

    for side, sign in (("left", 1.0), ("right", -1.0)):
        claim(f"{side}_eye", ((sign * x - 31.0) / 19.0) ** 2 + ((y - 1.0) / 11.0) ** 2 < 1.0)
    claim("nose", (np.abs(x) < 18.0) & (y < 4.0) & (y > -49.0))
    claim("mouth", (x / 31.0) ** 2 + ((y - _LIP_Y_CONTACT) / 14.0) ** 2 < 1.0)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        claim(f"{side}_cheek", (sign * x > 20.0) & (sign * x < 60.0) & (y > -62.0) & (y < -12.0))
    return {name: regions[name] for name in ("left_eye", "right_eye", "nose", "mouth",
                                             "left_cheek", "right_cheek")}


_SKIN = np.array([0.86, 0.68, 0.57])
_BROW = np.array([0.27, 0.19, 0.14])
_HAIR = np.array([0.24, 0.17, 0.12])
_LIP = np.array([0.72, 0.42, 0.40])
_SCLERA = np.array([0.90, 0.88, 0.85])
_IRIS = np.array([0.30, 0.20, 0.13])
_PUPIL = np.array([0.06, 0.05, 0.05])
_LASH = np.array([0.14, 0.10, 0.08])
_NOSTRIL = np.array([0.32, 0.20, 0.17])
_MOUTH_LINE = np.array([0.30, 0.12, 0.12])


def _curve(names: tuple[str, ...], x: np.ndarray) -> np.ndarray:
    """(N,) height at |x| of the smooth curve through the named frontal points (x >= 0)."""
    xs, ys = np.array([_POINTS[name][1:3] for name in names]).T
    return _pchip(xs, ys, x)


def _albedo(mean: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """(V, 3) colour template in [0, 1]: skin, brows, eyes, lips, nostrils, hair."""
    x, y, face = mean[:, 0], mean[:, 1], _face_side(domain)
    ax = np.abs(x)
    color = np.tile(_SKIN, (len(x), 1))

    def paint(mask_weight, rgb):
        w = np.clip(mask_weight, 0.0, 1.0)[:, None]
        color[:] = color * (1 - w) + np.asarray(rgb) * w

    # hair: above a hairline through trichion that recedes at the temples and comes down in
    # front of the ears; the edge is 6 mm wide measured across the line, not just along y
    knots_phi = np.array([0.0, 20, 40, 55, 70, 84, 95, 132])
    knots_y = np.array([69.0, 66.5, 59, 45, 28, 4, 16, -42])
    hair_y = _pchip(knots_phi, knots_y, np.degrees(np.abs(domain[:, 0])))
    slope = _curve_interpolator(tuple(knots_phi), tuple(knots_y)).derivative()(
        np.degrees(np.abs(domain[:, 0]))) * 180.0 / (math.pi * _R_PARAM)  # mm per mm
    paint((y - hair_y) / (6.0 * np.sqrt(1.0 + slope**2)) + 0.5, _HAIR)
    # eyebrows: a band under the brow landmarks, thicker medially
    brow_y = _curve(("brow22_L", "brow23_L", "brow24_L", "brow25_L", "brow26_L"), ax)
    brow_thick = np.interp(ax, [15.0, 40.0, 60.0], [7.0, 5.5, 3.0])
    inside_brow = (brow_y + 0.5 - y) * (y - (brow_y - brow_thick)) * face
    paint(np.where((ax > 15.0) & (ax < 59.0), inside_brow / 3.0, 0.0), _BROW)
    # eyes: sclera between the lids, iris and pupil, lash line on the upper lid
    upper = _curve(("en_L", "eye43_L", "ps_L", "eye44_L", "ex_L"), ax)
    lower = _curve(("en_L", "eye47_L", "pi_L", "eye46_L", "ex_L"), ax)
    inner, outer = _POINTS["en_L"][1], _POINTS["ex_L"][1]
    in_fissure = (ax > inner) & (ax < outer) & (y < upper) & (y > lower) & face
    paint(in_fissure * 1.0, _SCLERA)
    iris_d = np.hypot(ax - (inner + outer) / 2, y - 0.3)
    paint(in_fissure * np.clip((5.6 - iris_d) / 0.8 + 0.5, 0, 1), _IRIS)
    paint(in_fissure * np.clip((2.2 - iris_d) / 0.6 + 0.5, 0, 1), _PUPIL)
    lash = (ax > inner - 0.3) & (ax < outer + 1.0) & (np.abs(y - upper - 0.2) < 0.9) & face
    paint(lash * 1.0, _LASH)
    # lips: between the vermilion borders; the contact line darker
    lip_top = _curve(("ls", "mouth52_L", "mouth53_L", "ch_L"), ax)
    lip_bottom = _curve(("li", "mouth56_L", "mouth55_L", "ch_L"), ax)
    in_lips = (ax < _MOUTH_CORNER_X) & face
    lip_w = np.minimum(lip_top - y, y - lip_bottom) / 0.8 + 0.5
    paint(in_lips * lip_w, _LIP)
    paint(((ax < _MOUTH_CORNER_X - 1.0) & (np.abs(y - _LIP_Y_CONTACT) < 0.5) & face) * 1.0,
          _MOUTH_LINE)
    # nostrils
    paint(face * np.clip(1.3 - np.hypot((ax - 6.5) / 3.3, (y + 44.2) / 1.8), 0, 1) * 1.6, _NOSTRIL)
    return np.clip(color, 0.0, 1.0)
