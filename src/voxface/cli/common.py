"""What the command modules share: option groups and how results are printed."""

from __future__ import annotations

import argparse
import inspect
import sys

from ..errors import VoxfaceError


def add_command(sub, name: str, handler) -> argparse.ArgumentParser:
    """The subcommand ``name`` of ``sub`` that runs ``handler(args)``. What ``voxface --help`` and
    ``voxface NAME --help`` say is the handler's docstring: its first paragraph is the one-line help,
    the rest the description."""
    summary, _, details = inspect.cleandoc(handler.__doc__).partition("\n\n")
    p = sub.add_parser(name, help=" ".join(summary.split()), description=" ".join(details.split()) or None)
    p.set_defaults(func=handler)
    return p


def add_settings_options(p: argparse.ArgumentParser, config_help: str, runs: tuple[str, ...] = ()) -> None:
    """``--config``, ``--corpus``, ``--set``, ``--quiet`` and ``--<run>-run`` for each of ``runs``
    (e.g. ``("speaker",)``): how every command that builds a method's settings takes them."""
    p.add_argument("--config", help=f"YAML settings ({config_help})")
    p.add_argument("--corpus", help="corpus folder")
    for run in runs:
        p.add_argument(f"--{run}-run", dest=f"{run}_run", help=f"run folder of `voxface train {run}`")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any setting")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def print_summary(metrics: dict) -> None:
    """One line per method of a voice-to-3D evaluation: mean ARE with its interval, the gain against the
    gender oracle with its interval and p-value, NME, RMSE; then coherence."""
    from ..evaluate.statistics import gain_texts

    stats = metrics["statistics"]["methods"]
    for name, r in metrics["methods"].items():
        ci = stats[name]["mean"]
        versus = stats[name]["vs"].get("gender oracle")
        test = (f" (95% CI {gain_texts(versus['gain'])[1]}, p={versus['p_value']:.4f}"
                f"{', significant' if versus['significant'] else ''})") if versus else ""
        print(f"  {name:18s} mean ARE {r['ARE']['mean']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}]  gain vs gender "
              f"oracle {100 * r['gain_vs_gender_oracle']:+.1f}%{test}  NME {r['NME']['cmp']:.4f}  "
              f"RMSE {r['RMSE']['holistic']:.3f}")
    c = metrics["coherence"]
    print(f"  coherence: within-speaker {c['within_speaker_distance']:.3f} vs between-speaker "
          f"{c['between_speaker_distance']:.3f} {metrics['units']}")


def print_methods(metrics: dict) -> None:
    """One line per method: mean ARE, NME, RMSE."""
    for name, r in metrics["methods"].items():
        print(f"  {name:20s} mean ARE {r['ARE']['mean']:.4f}  NME {r['NME']['cmp']:.4f}  "
              f"RMSE {r['RMSE']['holistic']:.3f}")


def report_outcomes(outcomes: list, out: str) -> None:
    """One line per input file; VoxfaceError (exit 2) when any failed."""
    for o in outcomes:
        if o.error:
            print(f"{o.source}: error: {o.error}", file=sys.stderr)
        else:
            print(f"{o.source}: {', '.join(o.outputs)}")
    failed = [o for o in outcomes if o.error]
    if failed:
        written = len(outcomes) - len(failed)
        raise VoxfaceError(f"{len(failed)} of {len(outcomes)} file(s) failed (see above); "
                           + (f"the other {written} were written to {out}" if written else "nothing was written"))
