"""Supervised CMP speed on this machine: training steps per second at batch 64 and predict latency.

    python bench/bench_supervised.py [--threads 2]

Measures, side by side in one run on random inputs (speed does not depend on the data):
- speaker pre-training steps/s (CMP encoder forward + backward, 64 crops of 300-800 frames);
- supervised steps/s with the paper's recipe (frozen encoder on fresh crops, triplets: 3 x 64 crops);
- supervised steps/s with the embedding bank (the fast default: regressor only);
- latency of one prediction for a 10 s clip excluding start-up: VAD + features + encoder + regressor
  + reconstruction (inference), and the same plus writing the OBJ, PNG render and JSON (predict_files).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from voxface.audio.io import save_wav
from voxface.audio.synth import sample_conditions, sample_voice_params, synthesize
from voxface.face3d.loading import load_morphable_model
from voxface.methods.speaker import SpeakerPretraining
from voxface.methods.supervised import SupervisedCMP
from voxface.models.regressor import ParameterRegressor
from voxface.models.voice_encoders import CMPVoiceEncoder
from voxface.predictors.voice_to_3d import VoiceTo3D
from voxface.workflows.predict import predict_files

BATCH = 64
LATENCY_TARGET_MS = 100.0


def steps_per_second(step, n: int = 5) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - start)


def optimiser_step(module, batch, params):
    optimiser = torch.optim.Adam(params, lr=2e-4)

    def step():
        optimiser.zero_grad()
        module.training_step(batch, 0).backward()
        optimiser.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_morphable_model("builtin")
    k = model.n_shape
    module_log = lambda *a, **kw: None  # noqa: E731  (no Trainer attached: skip self.log)

    speaker = SpeakerPretraining(n_speakers=80)
    speaker.log = module_log
    batch = (torch.randn(BATCH, 64, 800), torch.randint(0, 80, (BATCH,)))
    sp = steps_per_second(optimiser_step(speaker, batch, speaker.parameters()))

    triplets = {"features": torch.randn(BATCH, 3, 64, 800), "target": torch.randn(BATCH, 3, k)}
    online = SupervisedCMP(CMPVoiceEncoder().eval(), 64, k, torch.zeros(k), torch.ones(k))
    online.log_dict = module_log
    paper = steps_per_second(optimiser_step(online, triplets, online.regressor.parameters()))

    bank = SupervisedCMP(None, 64, k, torch.zeros(k), torch.ones(k))
    bank.log_dict = module_log
    fast = steps_per_second(optimiser_step(bank, {"features": torch.randn(BATCH, 3, 64), "target": triplets["target"]},
                                           bank.regressor.parameters()), n=200)

    predictor = VoiceTo3D("cmp", CMPVoiceEncoder().eval(), ParameterRegressor(64, k), model)
    rng = np.random.default_rng(0)
    voice = sample_voice_params(rng, "m")
    wave = np.concatenate([synthesize(voice, sample_conditions(rng, duration_s=(3.4, 3.4))) for _ in range(3)])[:160000]
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip10s.wav"
        save_wav(clip, wave, 16000)
        from voxface.audio.voice import prepare_voice

        def infer():
            predictor.predict(prepare_voice(clip))

        def full():
            predict_files(predictor, [str(clip)], Path(tmp) / "out")

        infer(), full()  # warm-up: filterbank, renderer context
        infer_ms = statistics.median(_time(infer) for _ in range(15))
        full_ms = statistics.median(_time(full) for _ in range(10))

    print(f"threads: {torch.get_num_threads()}, batch {BATCH}")
    print(f"speaker pre-training: {sp:.2f} steps/s")
    print(f"supervised, paper recipe (frozen encoder on fresh crops): {paper:.2f} steps/s "
          f"-> 50,000 steps in {50000 / paper / 3600:.1f} h")
    print(f"supervised, embedding bank (fast default): {fast:.0f} steps/s -> 50,000 steps in {50000 / fast / 60:.1f} min")
    print(f"predict latency, 10 s clip, inference only: {infer_ms:.1f} ms "
          f"(target <= {LATENCY_TARGET_MS:.0f} ms, ratio {infer_ms / LATENCY_TARGET_MS:.2f})")
    print(f"predict latency, 10 s clip, with OBJ + PNG + JSON written: {full_ms:.1f} ms")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


if __name__ == "__main__":
    main()
