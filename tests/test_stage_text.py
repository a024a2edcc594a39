"""The stage's text alternative (render/stage.step_texts): what a screen reader hears at each step, checked
against the trajectory itself."""

import pytest

from dlm_core.render.cells import cell_states
from dlm_core.render.stage import stage_data, step_texts, waiting_stage_data
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS


@pytest.fixture(scope="module")
def masked():
    model, _ = training.load_checkpoint(training.default_checkpoint("masked"))
    return VARIANTS["masked"].trajectory(model, 6, 2, strategy="random", remask_eta=0.0)


def spoken(traj, tok) -> str:
    return "mask" if tok == traj.mask_id else traj.token_text(tok).strip("[]")


def test_each_step_names_every_unit_and_what_the_step_did(masked):
    data = stage_data(masked)
    assert len(data["alt"]) == masked.n_steps + 1
    assert data["alt"][0] == "Step 0 of 6: " + ", ".join(["mask"] * 6) + "."
    for k in range(1, masked.n_steps + 1):
        units = [spoken(masked, t) for t in masked.tokens_at(k)]
        rec = masked.records[k - 1]
        want = f"Step {k} of 6: {', '.join(units)}."
        if rec.committed:
            named = "; ".join(f"position {i + 1}, {units[i]}" for i in rec.committed)
            want += f" Committed at this step: {named}."
        assert data["alt"][k] == want


def test_noise_that_shows_a_unit_is_called_noise_and_changes_are_named():
    model, _ = training.load_checkpoint(training.default_checkpoint("uniform"))
    traj = VARIANTS["uniform"].trajectory(model, 4, 0)
    data = stage_data(traj)
    assert data["alt"][0].endswith("[MASK] / still noise: positions 1, 2, 3, 4, 5, 6.")
    states = cell_states(traj)
    for k in range(1, traj.n_steps + 1):
        changed = [i for i, s in enumerate(states[k]) if s == "changed"]
        assert ("Changed at this step" in data["alt"][k]) == bool(changed)
        for i in changed:
            assert f"position {i + 1}, {spoken(traj, traj.tokens_at(k)[i])}" in data["alt"][k]


def test_other_words_and_rows():
    tokens = [[9, 9, 9], [9, 1, 9], [0, 1, 2]]
    states = [["mask"] * 3, ["mask", "committed_now", "mask"], ["committed_now", "committed_earlier", "changed"]]
    words = {"mask": "hidden", "committed_now": "written now", "changed": "rewritten", "remasked": "hidden again",
             "committed_earlier": "kept"}
    out = step_texts(tokens, states, words, 9, "noise level", rows=[1, 2], vocab=["a", "##b", "[SEP]"])
    assert out == ["Noise level 0 of 2: mask, mask.", "Noise level 1 of 2: b, mask. Written now: position 2, b.",
                   "Noise level 2 of 2: b, SEP. Rewritten: position 3, SEP."]


def test_the_waiting_stage_is_step_0_of_0_with_its_note():
    data = waiting_stage_data(4, 103, "model: nothing generated yet", "Press Generate.")
    assert data["T"] == 0 and data["present"] and data["note"] == "Press Generate."
    assert data["alt"] == ["Step 0 of 0: mask, mask, mask, mask."]
