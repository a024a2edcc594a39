import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def masked_model():
    from dlm_core import training

    model, meta = training.load_checkpoint(training.default_checkpoint("masked"))
    return model


def oracle_log_probs(z):
    """log of the exact conditionals of the language (the oracle denoiser)."""
    from dlm_core.toy_language import true_conditionals

    with np.errstate(divide="ignore"):
        return np.log(true_conditionals(z))


def run_cli(*args, check=True, timeout=600):
    """python -m dlm_core ARGS from the repo root; returns the CompletedProcess."""
    p = subprocess.run([sys.executable, "-m", "dlm_core", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"CLI {args} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p
