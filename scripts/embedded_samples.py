"""Print samples of the embedded model for its model card / issue notes.

    PYTHONPATH=. .venv/bin/python scripts/embedded_samples.py [--model PATH] [--n 5]

Unconditional (an empty canvas of 64 tokens) and prompted samples, each with random order at
temperature 1 and with low-confidence ordering (temperature 1 and 0).
"""

import argparse

import torch

from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.variants import hf_adapter

PROMPTS = ("to be or not to be, that is the", "my lord, the king", "o, what a", "i pray you, sir,",
           "the night is")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--gen-length", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)
    lm = hf_adapter.load(a.model)
    settings = [("random order, temperature 1", "random", 1.0), ("low-confidence, temperature 1", "low-confidence",
                                                                 1.0), ("low-confidence, temperature 0",
                                                                        "low-confidence", 0.0)]
    for title, strategy, tau in settings:
        for prompted in (False, True):
            print(f"\n### {'prompted' if prompted else 'unconditional'}, {title}, {a.gen_length} tokens, "
                  f"{a.gen_length} steps")
            for i in range(a.n):
                prompt = PROMPTS[i % len(PROMPTS)] if prompted else ""
                cfg = MaskedSamplerConfig(steps=a.gen_length, strategy=strategy, temperature=tau, seed=i, top_k=1)
                traj = hf_adapter.generate(lm, prompt, a.gen_length, cfg)
                text = lm.decode(traj.final[traj.gen_start: traj.gen_start + a.gen_length])
                print(f"{i + 1}. " + (f"*{prompt}* → " if prompt else "") + text)


if __name__ == "__main__":
    main()
