import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


# The longest test files first (their sums, measured with --junitxml): scripts/test.sh runs two processes that take
# a file at a time in this order, so the short files fill in at the end instead of one long file running alone.
LONGEST_FIRST = ("test_lessons_browser.py", "test_links.py", "test_browser.py", "test_lessons.py",
                 "test_department.py", "test_training_lab.py", "test_compare.py", "test_data_study.py",
                 "test_order_study.py", "test_infill.py", "test_jobs_browser.py", "test_masked_checkpoint.py",
                 "test_poll_browser.py", "test_a11y_browser.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the other files keep their order


@pytest.fixture(scope="session")
def masked_model():
    from dlm_core.studies import training

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


# ------------------------------------------------------------------- PostgreSQL (the poll's server database)


@pytest.fixture(scope="session")
def pg_url():
    """A PostgreSQL server of the tests' own, from Debian's packages (deploy/pg_local.py): a throwaway cluster
    in a temporary folder on a free port of 127.0.0.1, for the session; its URL."""
    import shutil
    import tempfile

    sys.path.insert(0, str(ROOT / "deploy"))
    from browser_util import free_port
    from pg_local import LocalPostgres

    folder = tempfile.mkdtemp(prefix="dlm-test-pg-")
    server = LocalPostgres(folder, free_port(), durable=False, password=True)
    try:
        server.start()
        yield server.url
    finally:
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------- browser tests


@pytest.fixture(scope="session")
def app_url():
    """The app served on 127.0.0.1 by scripts/serve.py, for the browser tests; stopped at the end."""
    from browser_util import served_app

    with served_app("streamlit-test.log") as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from browser_util import CHROMIUM, SHOTS
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


def train_on_the_page(at, steps: int = 50):
    """Submit the Train page's form for `steps` steps, wait (bounded) for the job, rerun; returns the job."""
    at.number_input(key="train_steps").set_value(steps)
    at.button[0].click()  # the form's submit button
    at.run()
    job = at.session_state["train_job"]
    job.wait(timeout=120)
    at.run()
    return job


def generate_on_the_real_page(app_file: str, gen_length: int = 16, steps: int = 8, block_length: int = 8):
    """The Real page on the embedded model with a small generation done (AppTest)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(app_file, default_timeout=120)
    at.switch_page("pages/views/real.py")
    at.session_state["real_gen_length"] = gen_length
    at.session_state["real_steps"] = steps
    at.session_state["real_block_length"] = block_length
    at.run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.key == "real_generate").click().run()
    assert not at.exception, at.exception
    return at
