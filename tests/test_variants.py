"""One interface for every variant: the registry, one evaluation schema, and a fourth
variant added with nothing but its class and one registry line."""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dlm_core import toy_language as T
from dlm_core.render import cells
from dlm_core.sampling.options import option
from dlm_core.sampling.sampler import CHUNK, Sampler, SamplerConfig, StepOutput, top_k_of
from dlm_core.studies import training
from dlm_core.variants.base import PageText, ToyVariant
from dlm_core.variants.evaluate import EvalReport, EvalSettings
from dlm_core.variants.registry import VARIANTS, get

ROOT = Path(__file__).resolve().parent.parent
TINY = EvalSettings(n_samples=40, n_t=8, steps=(1, 6))


# ------------------------------------------------------------- a fourth variant


class UnigramDenoiser(torch.nn.Module):
    """Ignores its input: the same learned logits at every position (a 'no-op' denoiser)."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(T.V))

    def forward(self, z, t=None):
        return self.logits.expand(z.shape[0], T.L, T.V)


@dataclass
class UnigramConfig(SamplerConfig):
    steps: int = 3
    resample: bool = option(True, label="Redraw every position at every step")


class UnigramSampler(Sampler):
    """Each step redraws every position from the denoiser's distribution (or keeps it)."""

    def __init__(self, model, config, x_init=None, batch=1):
        self.model, self.config, self.k = model, config, 0
        self.generator = torch.Generator().manual_seed(config.seed)
        self.x = (torch.randint(0, T.V, (batch, T.L), generator=self.generator) if x_init is None
                  else torch.as_tensor(x_init).reshape(-1, T.L).clone())
        self.initial = self.x.clone()

    def step(self) -> StepOutput:
        self._check_not_done()
        probs = torch.softmax(self.model(self.x).double().detach(), -1)
        if self.config.resample:
            self.x = torch.multinomial(probs.reshape(-1, T.V), 1, generator=self.generator).reshape(self.x.shape)
        self.k += 1
        ids, p = top_k_of(probs, self.config.top_k)
        t, s = 1 - (self.k - 1) / self.config.steps, 1 - self.k / self.config.steps
        return StepOutput(step=self.k, t=t, s=s, x=self.x.clone(), topk_ids=ids, topk_probs=p,
                          confidence=probs.gather(-1, self.x[..., None])[..., 0])


class UnigramVariant(ToyVariant):
    name = "unigram"
    default_steps = 3
    config_class = UnigramConfig
    legend = ("mask", "changed", "committed_earlier")
    train_defaults = {"steps": 5, "lr": 2e-3}  # 5 small steps: the unigram barely moves
    text = PageText(intro="A test variant whose denoiser ignores its input.", reverse_how="It redraws.",
                    prediction="the unigram at step {k}", forward_how="No noise at all.")

    def build_model(self, cfg):
        return UnigramDenoiser()

    def corrupt(self, model, x0, t, generator=None, schedule="linear"):
        return x0.clone()

    def loss(self, model, x0, schedule="linear", generator=None):
        return torch.nn.functional.cross_entropy(model(x0).transpose(1, 2), x0, reduction="none").sum(-1).mean()

    def make_sampler(self, model, config, x_init=None, batch=1):
        return UnigramSampler(model, config, x_init, batch)

    def bound(self, model, settings):
        """The cross-entropy of the unigram, exactly: sum_x p(x) sum_i -log q(x^i), bits per unit."""
        sa = T.support_arrays()
        logq = torch.log_softmax(model.logits.detach().double(), -1).numpy()
        return float((sa.p * -logq[sa.x].sum(-1)).sum()) / (T.L * math.log(2)), 0.0, {}

    def forward_view(self, model, x0, t, seed=0, schedule="linear"):
        import numpy as np

        return {"alpha": 1.0, "tokens": list(x0), "changed": [], "marginals": np.eye(T.V)[list(x0)],
                "marginal_labels": list(T.UNITS)}


@pytest.fixture
def unigram(monkeypatch, tmp_path):
    """Register the fourth variant (one registry line) and ship it a checkpoint."""
    monkeypatch.setitem(VARIANTS, "unigram", UnigramVariant())
    cfg = training.default_config("unigram")
    result = training.train(cfg)
    monkeypatch.setattr(training, "CHECKPOINTS", tmp_path)
    training.save_checkpoint(result, training.default_checkpoint("unigram"))
    return get("unigram"), result.model


def test_a_fourth_variant_runs_through_trajectory_sampling_and_evaluation(unigram):
    variant, model = unigram
    traj = variant.trajectory(model, seed=4)
    assert traj.variant == "unigram" and traj.n_steps == 3 and traj.settings["resample"] is True
    assert traj.settings["variant"] == "unigram" and cells.legend_states(traj)[0] == "mask"
    keep = variant.trajectory(model, seed=4, resample=False)  # a declared option reaches the sampler
    assert keep.final == keep.initial
    assert all(not cells.cell_states(keep)[k].count("changed") for k in (1, 2, 3))
    with pytest.raises(ValueError, match="no option"):
        variant.trajectory(model, seed=4, clamp=True)
    # the chunked sampler: n > CHUNK runs two chunks, the one that starts at sample j with seed + j
    x = variant.sample(model, CHUNK + 5, seed=9)
    assert x.shape == (CHUNK + 5, T.L) and torch.equal(variant.sample(model, 5, seed=9 + CHUNK), x[CHUNK:])
    assert torch.equal(variant.sample(model, CHUNK + 5, seed=9), x)
    report = variant.evaluate(model, TINY)
    assert isinstance(report, EvalReport) and set(report.by_steps) == {"1", "6"}
    assert report.nelbo_bits_per_unit == pytest.approx(math.log2(T.V), abs=1e-3)  # 5 steps barely move it


def test_a_fourth_variant_on_the_reverse_page(unigram):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["variant"] = "unigram"
    at.switch_page("pages/views/reverse.py")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="variant").value == "unigram"
    stage = json.loads(at.get("bidi_component")[0].proto.json)  # what the browser player gets
    assert stage["T"] == at.slider(key="steps").value == 3 and stage["title"].startswith("unigram")
    assert at.toggle(key="resample").value is True  # its control, drawn from its declared option
    at.toggle(key="resample").set_value(False).run()
    assert not at.exception and any("A test variant" in c.value for c in at.caption)


# ------------------------------------------------------------ one report schema


@pytest.fixture(scope="module")
def reports():
    return {name: v.evaluate(training.load_checkpoint(training.default_checkpoint(name))[0], TINY).to_dict()
            for name, v in VARIANTS.items()}


def test_every_variant_reports_the_same_keys(reports):
    keys = {name: set(r) for name, r in reports.items()}
    assert len({frozenset(k) for k in keys.values()}) == 1, keys
    cell_keys = {"validity", "validity_stderr", "reasons", "coverage_fraction", "kl_valid_bits", "tv", "n"}
    for name, r in reports.items():  # the budgets its sampler can write a sentence in (autoregressive: T >= 6)
        assert set(r["by_steps"]) == {str(T) for T in (1, 6) if T >= VARIANTS[name].min_steps}
        for cell in r["by_steps"].values():
            assert cell_keys <= set(cell) and cell["n"] == TINY.n_samples and 0 <= cell["validity"] <= 1
        assert r["nelbo_bits_per_unit"] >= r["entropy_bits_per_unit"] - 3 * r["nelbo_stderr_bits"] - 1e-9
        assert r["nelbo_exact"] == (r["nelbo_stderr_bits"] == 0.0)
    assert reports["masked"]["nelbo_exact"] and "validity_exact" in reports["masked"]["by_steps"]["6"]
    assert not reports["uniform"]["nelbo_exact"] and "validity_exact" not in reports["uniform"]["by_steps"]["6"]


def test_unknown_variant_and_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        get("nope")
    with pytest.raises(ValueError, match="uniform sampler has no option"):
        get("uniform").sampler_config(temperature=0.5)
    with pytest.raises(ValueError, match="unknown strategy"):
        get("gaussian").sampler_config(strategy="random")


# ----------------------------------------------------------------- the structure


def _module_imports(path: Path) -> set[str]:
    """The dlm_core modules a module imports at its top level (relative imports)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


def test_no_import_circle_in_dlm_core():
    graph = {p.stem: _module_imports(p) for p in (ROOT / "dlm_core").glob("*.py")}
    done, active = set(), []

    def visit(m):
        assert m not in active, f"import circle: {' -> '.join(active[active.index(m):] + [m])}"
        if m in done or m not in graph:
            return
        active.append(m)
        for n in graph[m]:
            visit(n)
        active.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_no_branch_on_a_variant_name_outside_the_variant_modules():
    names = "|".join(VARIANTS)
    branch = re.compile(rf"""(==|!=|\bin)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=)""")
    allowed = {f"{n}.py" for n in VARIANTS} | {"variants.py"}
    files = [p for p in (ROOT / "dlm_core").glob("*.py") if p.name not in allowed]
    files += list((ROOT / "pages").rglob("*.py")) + [ROOT / "app.py"]
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in files
            for i, line in enumerate(p.read_text().splitlines(), 1) if branch.search(line)]
    assert not hits, hits
