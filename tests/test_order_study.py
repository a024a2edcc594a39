"""The unmasking-order study (dlm_core/order_study.py): exact orders against independent enumerations,
the sampled matrices' bookkeeping, the real-model study on the embedded model, the CLI and the page."""

import base64
import json
import math
from collections import Counter
from itertools import permutations, product
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli
from streamlit.testing.v1 import AppTest

from dlm_core import toy_language as TL
from dlm_core.sampling.masked_sampler import SCORES, STRATEGIES, spread_counts
from dlm_core.studies import order_measures as OM
from dlm_core.studies import order_real as OR
from dlm_core.studies import order_study as O
from pages import md_escape

APP = str(ROOT / "app.py")
L = TL.L


# --------------------------------------------------------------- an independent Kendall tau-b


def tau_b_by_pairs(steps) -> float | None:
    """Kendall's tau-b of (position, step) by counting pairs one by one; None when undefined."""
    m = len(steps)
    concordant = discordant = ties_step = 0
    for i in range(m):
        for k in range(i + 1, m):  # positions i < k never tie
            if steps[k] > steps[i]:
                concordant += 1
            elif steps[k] < steps[i]:
                discordant += 1
            else:
                ties_step += 1
    n0 = m * (m - 1) // 2
    if ties_step == n0:
        return None
    return (concordant - discordant) / math.sqrt(n0 * (n0 - ties_step))


def test_tau_b_matches_the_pair_count_with_and_without_ties():
    rng = np.random.default_rng(3)
    ties = np.concatenate([rng.integers(1, 4, size=(200, 6)), np.ones((1, 6), dtype=int), np.arange(6, 0, -1)[None]])
    orders = np.array([rng.permutation(8) + 1 for _ in range(50)])  # one position per step: no ties
    for rows in (ties, orders):
        got = OM.kendall_tau_b(rows)
        for row, t in zip(rows.tolist(), got):
            want = tau_b_by_pairs(row)
            assert (want is None and np.isnan(t)) or abs(t - want) < 1e-12, (row, t, want)
    got = OM.kendall_tau_b(ties)
    assert got[-1] == pytest.approx(-1.0, abs=1e-15) and np.isnan(got[-2])


# ------------------------------------------------------------------- exact toy orders


def enumerate_random_order(T: int):
    """All 6! orders (each 1/720): the first c_1 positions of the order are committed at step 1, ..."""
    counts = spread_counts(L, T)
    P, dist = np.zeros((L, T)), Counter()
    for perm in permutations(range(L)):
        step, k = [0] * L, 0
        for j, c in enumerate(counts):
            for i in perm[k:k + c]:
                step[i] = j + 1
            k += c
        for i in range(L):
            P[i, step[i] - 1] += 1 / 720
        dist[tau_b_by_pairs(step)] += 1 / 720
    return P, dist


def linear_reveal_probs(T: int) -> list[float]:
    """P(revealed at step j) for MDLM's linear schedule, from the reveal chance (t - s) / t on the grid
    t_k = 1 - (k - 1) / T, with everything left revealed at the last step."""
    left, out = 1.0, []
    for k in range(1, T + 1):
        t, s = 1 - (k - 1) / T, 1 - k / T
        q = 1.0 if k == T else (t - s) / t
        out.append(left * q)
        left *= 1 - q
    return out


def enumerate_ancestral_order(T: int):
    """All T^6 reveal-step assignments with their probability (positions are revealed independently)."""
    pi = linear_reveal_probs(T)
    P, dist = np.zeros((L, T)), Counter()
    for step in product(range(1, T + 1), repeat=L):
        p = math.prod(pi[j - 1] for j in step)
        for i in range(L):
            P[i, step[i] - 1] += p
        dist[tau_b_by_pairs(step)] += p
    return P, dist


def compare_distribution(exact: dict, dist: Counter) -> None:
    undefined = dist.pop(None, 0.0)
    assert exact["p_undefined"] == pytest.approx(undefined, abs=1e-12)
    want: dict = {}
    for v, p in dist.items():  # tau values that differ in the last bits are one value
        key = round(v, 12)
        want[key] = want.get(key, 0.0) + p
    got = {round(v, 12): p for v, p in exact["values"]}
    assert got.keys() == want.keys()
    for v in want:
        assert got[v] == pytest.approx(want[v], abs=1e-12), v
    mean = sum(v * p for v, p in want.items()) / (1 - undefined)
    assert exact["mean"] == pytest.approx(mean, abs=1e-12)
    assert abs(exact["mean"]) < 1e-12  # both orders are blind to position: tau is 0 on average, exactly


@pytest.mark.parametrize("T", [2, 3, 6])
def test_random_order_is_exact(T):
    P, dist = enumerate_random_order(T)
    got = np.tile(OM.exact_step_probs("random", T, L), (L, 1))
    assert np.abs(got - P).max() < 1e-12
    compare_distribution(OM.exact_tau_distribution("random", T, L), dist)


@pytest.mark.parametrize("T", [2, 3, 6])
def test_ancestral_order_is_exact(T):
    P, dist = enumerate_ancestral_order(T)
    got = np.tile(OM.exact_step_probs("ancestral", T, L), (L, 1))
    assert np.abs(got - P).max() < 1e-12
    assert np.abs(OM.ancestral_step_probs(T) - 1 / T).max() < 1e-12  # the closed form for linear
    ex = OM.exact_tau_distribution("ancestral", T, L)
    assert ex["p_undefined"] == pytest.approx(T * T ** -L, abs=1e-15)  # all six at one step
    compare_distribution(ex, dist)


def test_the_cosine_schedule_reveals_few_units_first():
    pi = OM.ancestral_step_probs(6, "cosine")
    assert pi.sum() == pytest.approx(1.0, abs=1e-12) and pi[0] < 1 / 6 < pi[-1]
    assert OM.exact_step_probs("low-confidence", 6, L) is None and OM.exact_tau_distribution("margin", 3, L) is None


# --------------------------------------------------------------------- roles of the toy


def test_every_sentence_of_the_language_parses_into_roles():
    counts = Counter()
    for x in TL.support():
        roles = TL.unit_roles(x)
        assert len(roles) == L and "other" not in roles and roles.count("verb") == 1
        counts.update(roles)
    assert counts["verb"] == TL.support_size()
    assert TL.unit_roles(TL.encode("dog s are our friend s")) == ("noun", "plural s", "verb", "possessive", "noun",
                                                                   "plural s")
    assert TL.unit_roles(TL.encode("we are your s")) == ("pronoun", "verb", "possessive", "possessive s", "[PAD]",
                                                          "[PAD]")
    # not in the language: unit by unit, an s by the unit before it
    assert TL.unit_roles(TL.encode("our dog are your s")) == ("possessive", "noun", "verb", "possessive",
                                                              "possessive s", "[PAD]")
    assert TL.unit_roles(TL.encode("s is s")) == ("other", "verb", "other", "[PAD]", "[PAD]", "[PAD]")


# ------------------------------------------------------------------------ sampled toy cells


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_position_is_committed_once_and_each_step_commits_its_count(masked_model, strategy):
    for T in (2, 3, 6):
        x, s, per_step = O.toy_commit_steps(masked_model, strategy, T, 500, seed=T)
        assert s.min() >= 1 and s.max() <= T  # every position committed, at a step of the run
        assert (per_step.sum(1) == L).all()  # ... and only once (six commits in all)
        if strategy in SCORES:  # fixed count: exactly spread_counts(6, T) at each step
            assert (per_step == np.array(spread_counts(L, T))[None]).all()
            assert [(s == j).sum(1).tolist() for j in range(1, T + 1)] == [[c] * 500 for c in spread_counts(L, T)]
        assert not (x == TL.MASK_ID).any()


@pytest.fixture(scope="module")
def toy_cells(masked_model):
    st = OM.OrderStudySettings(toy_n=4000, real=False)
    return {(s, T): O.toy_cell(masked_model, s, T, st, seed=11 + T) for s, T in
            (("random", 2), ("random", 6), ("ancestral", 3), ("low-confidence", 3))}


def test_the_sampled_matrices_sum_as_they_must(toy_cells):
    for cell in toy_cells.values():
        P = np.array(cell["P"])
        assert np.abs(P.sum(1) - 1).max() < 1e-12  # each position: committed at exactly one step
        if cell["counts"]:  # fixed count: each step commits its count of positions
            assert np.abs(P.sum(0) - np.array(cell["counts"])).max() < 1e-12
        for role in cell["roles"].values():
            assert sum(role["P"]) == pytest.approx(1.0, abs=1e-12)
        # the roles share out every step's commits: sum_r count_r P(step j | role r) = n sum_i P[i, j]
        by_step = sum(np.array(r["P"]) * r["count"] for r in cell["roles"].values())
        assert np.abs(by_step - cell["n"] * P.sum(0)).max() < 1e-6
        assert sum(r["count"] for r in cell["roles"].values()) == cell["n"] * L
        firsts = sum(r["first_share"] for r in cell["roles"].values())
        assert firsts == pytest.approx(1.0, abs=1e-12)
        assert cell["tau"]["n_defined"] + cell["tau"]["n_undefined"] == cell["n"]
        assert sum(cell["tau"]["hist"]) == pytest.approx(1.0, abs=1e-12)
        assert sum(p for _, p in cell["tau"]["values"]) == pytest.approx(1.0, abs=1e-12)


def test_sampled_random_and_ancestral_orders_agree_with_the_exact_ones(toy_cells):
    for strategy, T in (("random", 2), ("random", 6), ("ancestral", 3)):
        cell = toy_cells[strategy, T]
        P, se, exact = (np.array(cell[k]) for k in ("P", "P_se", "P_exact"))
        assert (np.abs(P - exact) <= 4 * se + 1e-12).all(), (T, P - exact)
        assert abs(cell["tau"]["mean"] - cell["tau_exact"]["mean"]) <= 4 * cell["tau"]["se"]
        defined = 1 - cell["tau_exact"]["p_undefined"]  # shares are of the sequences where tau is defined
        exact_values = {v: p / defined for v, p in cell["tau_exact"]["values"]}
        assert cell["tau_exact"]["hist"] == pytest.approx(np.histogram(
            list(exact_values), bins=len(cell["tau"]["hist"]), range=(-1, 1),
            weights=list(exact_values.values()))[0].tolist(), abs=1e-12)
        sampled = dict(cell["tau"]["values"])
        assert set(sampled) <= set(exact_values)  # only values the exact distribution has
        for v, p in exact_values.items():  # and each as often as it should, within 4 SE
            assert abs(sampled.get(v, 0.0) - p) <= 4 * math.sqrt(p * (1 - p) / cell["tau"]["n_defined"]) + 1e-12, v


def test_low_confidence_is_not_left_to_right_neutral(toy_cells):
    cell = toy_cells["low-confidence", 3]
    assert cell["P_exact"] is None and cell["tau_exact"] is None
    assert abs(cell["tau"]["mean"]) > 6 * cell["tau"]["se"]


# ----------------------------------------------------------------------------- real model


def test_word_classes_read_whole_words():
    toks = ["[CLS]", "the", "king", "##s", ",", "where", "##fore", "art", "thou", "where", "!", "[SEP]"]
    assert OR.word_classes(toks, {"[CLS]", "[SEP]"}, "wordpiece") == [
        "special", "function word", "content word", "subword", "punctuation", "content word", "subword",
        "function word", "function word", "function word", "punctuation", "special"]
    assert OR.word_classes(["▁The", "▁king", "s", "▁,"], set(), "sentencepiece") == [
        "function word", "content word", "subword", "punctuation"]


@pytest.fixture(scope="module")
def real_small():
    st = OM.OrderStudySettings(real_n=10, real_gen_length=16, real_steps=8, real_prompt_tokens=4, real_batch=5,
                              position_buckets=4, step_bins=4)
    return st, OR.real_study(st)


def test_the_real_model_study_accounts_for_every_token(real_small):
    st, real = real_small
    assert real["word_marker"] == "wordpiece" and real["model"].startswith("embedded")
    assert list(real["strategies"]) == ["low-confidence", "random"]
    n_tokens = st.real_n * st.real_gen_length
    for strategy, r in real["strategies"].items():
        assert r["n"] == st.real_n and r["tokens"] == n_tokens and r["uncommitted"] == 0
        for key in ("by_class", "by_frequency", "by_position"):
            view = r[key]
            assert sum(v["count"] for v in view.values()) == n_tokens, (strategy, key)
            assert sum(v["share"] for v in view.values()) == pytest.approx(1.0, abs=1e-12)
            # the step-1 commits: two per generation (16 tokens in 8 steps), shared among the groups
            assert sum(v["first_step_share"] for v in view.values() if v["count"]) == pytest.approx(1.0, abs=1e-12)
            for v in view.values():
                if v["count"]:
                    assert sum(v["P_bins"]) == pytest.approx(1.0, abs=1e-12) and 0 <= v["mean_rel_step"] <= 1
        assert [v["count"] for v in r["by_position"].values()] == [n_tokens // 4] * 4
        assert r["tau"]["n_defined"] + r["tau"]["n_undefined"] == st.real_n
        assert r["by_class"]["special"]["count"] == 0  # special tokens are suppressed inside the text
    # random order: each position's mean relative step is (S + 1)/2 - 1 over S - 1 = 0.5 in expectation
    rnd = real["strategies"]["random"]["by_position"]
    assert all(abs(v["mean_rel_step"] - 0.5) <= 4 * v["se"] + 0.02 for v in rnd.values())
    text = O.real_findings(real)
    assert "low-confidence" in text and "random" in text and real["model"] in text


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("order") / "order.json"
    p = run_cli("order-study", "--json", "--quick", "--out", str(out))
    return json.loads(p.stdout), json.loads(out.read_text())


def test_the_quick_cli_run_has_everything(quick_run):
    printed, written = quick_run
    assert printed == written
    assert {"what", "computed_at", "wall_time_s", "command", "settings", "seeds", "toy", "real", "findings"} <= set(
        printed)
    assert printed["settings"]["command"] == printed["command"]
    assert printed["command"].startswith("python -m dlm_core order-study --json --quick --out ")
    assert printed["settings"]["toy_n"] == OM.OrderStudySettings.quick().toy_n
    assert set(printed["toy"]["cells"]) == set(STRATEGIES) and len(printed["findings"]) == 2
    assert printed["real"]["strategies"]["random"]["n"] == OM.OrderStudySettings.quick().real_n


def test_the_shipped_results_are_the_full_run_and_the_exact_parts_reproduce(quick_run):
    shipped = O.load_results()
    quick, _ = quick_run
    assert shipped["command"] == shipped["settings"]["command"] == OM.COMMAND
    assert shipped["settings"]["real_n"] >= 200 and shipped["settings"]["toy_n"] >= 20000
    for s in OM.EXACT_STRATEGIES:
        for T, cell in shipped["toy"]["cells"][s].items():
            q = quick["toy"]["cells"][s][T]
            assert cell["P_exact"] == q["P_exact"] and cell["tau_exact"] == q["tau_exact"]
    assert shipped["findings"] == [O.toy_findings(shipped["toy"]), O.real_findings(shipped["real"])]


def test_cli_errors_are_one_line(tmp_path):
    for out in ("/no/such/folder/order.json", str(tmp_path)):
        p = run_cli("order-study", "--json", "--quick", "--out", out, check=False)
        assert p.returncode != 0 and "Traceback" not in p.stderr and not p.stdout
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot write"), p.stderr


# ----------------------------------------------------------------------------------- page


def open_order_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()  # the first run registers the pages (the page's url_path is not its file name)
    if query:
        at.query_params.update(query)
    at.switch_page("pages/views/order_study.py")
    at.run()
    assert not at.exception, at.exception
    return at


def heatmap_z(at, n: int) -> np.ndarray:
    """The z matrix of the n-th chart (plotly writes numpy arrays as base64 typed arrays)."""
    z = json.loads(at.get("plotly_chart")[n].proto.spec)["data"][0]["z"]
    if isinstance(z, dict):
        shape = [int(k) for k in str(z.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"])).reshape(shape).astype(float)
    return np.array(z, dtype=float)


def test_the_page_shows_the_shipped_findings_and_numbers():
    shipped = O.load_results()
    at = open_order_page()
    assert [i.value for i in at.info][:2] == [md_escape(f) for f in shipped["findings"]]
    cell = shipped["toy"]["cells"]["low-confidence"]["6"]  # the page opens on low-confidence, T = 6
    assert np.abs(heatmap_z(at, 0) - np.array(cell["P"])).max() < 1e-12
    at.selectbox(key="os_strategy").set_value("random").run()
    at.radio(key="os_T").set_value(3).run()
    assert not at.exception
    exact = shipped["toy"]["cells"]["random"]["3"]["P_exact"]
    assert np.abs(heatmap_z(at, 0) - np.array(exact)).max() < 1e-12
    assert np.abs(heatmap_z(at, 0) - 1 / 3).max() < 1e-12  # two of the six positions per step
    table = next(m.value for m in at.markdown if m.value.startswith("| strategy |"))
    assert "| random | 0 (exact) | 0 (exact) | 0 (exact) |" in table
    assert len(at.get("plotly_chart")) == 8 and not at.error


@pytest.mark.parametrize("content", [None, "{not json", '{"toy": 1}'])
def test_a_missing_or_broken_results_file_is_named_with_its_command(tmp_path, monkeypatch, content):
    path = tmp_path / "order_study.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(OM, "RESULTS", path)  # where the page reads it (order_measures, since the reorganisation)
    at = open_order_page()
    assert len(at.error) == 1 and not at.get("plotly_chart")
    msg = at.error[0].value
    assert md_escape(str(path)) in msg and OM.COMMAND in msg


def test_recompute_runs_once_and_every_session_sees_it(monkeypatch, tmp_path):
    tiny = dict(toy_steps=(2, 6), toy_n=200, real_n=4, real_gen_length=8, real_steps=4, real_prompt_tokens=4,
                real_batch=4, step_bins=4, position_buckets=4)
    monkeypatch.setattr(OM.OrderStudySettings, "quick", classmethod(lambda cls, **kw: cls(**{**tiny, **kw})))
    calls = []
    compute = O.compute
    monkeypatch.setattr(O, "compute", lambda *a, **kw: calls.append(1) or compute(*a, **kw))
    at = open_order_page()
    at.button(key="order_recompute").click().run()
    assert not at.exception, at.exception
    key = at.session_state["order_key"]
    shown = [i.value for i in at.info][:2]
    other = open_order_page()  # another session presses the button for the same settings: no second run
    other.button(key="order_recompute").click().run()
    assert not other.exception and other.session_state["order_key"] == key and len(calls) == 1
    assert [i.value for i in other.info][:2] == shown
    assert any("Recompute button" in c.value for c in other.caption)
    assert other.radio(key="os_T").options == ["2", "6"]


# -------------------------------------------------------------------------------- browser


@pytest.mark.browser
def test_the_page_in_a_browser(app_url, browser):
    from browser_util import SHOTS, open_and_wait, page_text

    page = open_and_wait(browser, app_url + "/order", "Unmasking order", height=900, width=1400)
    text = page_text(page)
    shipped = O.load_results()
    assert shipped["findings"][0][:60] in text
    page.screenshot(path=str(SHOTS / "order-study.png"))
    page.close()


def test_results_path_is_in_assets():
    assert OM.RESULTS == Path(ROOT) / "assets" / "order_study.json"
