"""The bad-input matrix: every case gets one clear message, never a traceback, and nothing already on
screen is lost. The CLI answers with exit code != 0 and one line on stderr; the pages with a message
(AppTest). Links are covered case by case in test_links.py; shipped files that are broken in
test_fault_tolerance below."""

import json
import shutil

import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest
from tiny_models import make_bert, make_gpt2, make_remote_code

from dlm_core import cli, trajectory_file
from dlm_core.studies import training

APP = str(ROOT / "app.py")
TIMEOUT = 120


# ------------------------------------------------------------------ broken files to feed in


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and broken model folders, toy and real."""
    root = tmp_path_factory.mktemp("bad")
    good = training.default_checkpoint("masked")
    out = {}

    def toy(name, change):
        d = root / name
        shutil.copytree(good, d)
        change(d)
        out[name] = str(d)

    toy("toy_header_garbage", lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64 + b"{not json"))
    weights = (good / "model.safetensors").read_bytes()
    toy("toy_truncated", lambda d: (d / "model.safetensors").write_bytes(weights[:999]))
    toy("toy_json_garbage", lambda d: (d / "checkpoint.json").write_text("{this is not json"))
    toy("toy_json_wrong", lambda d: (d / "checkpoint.json").write_text(json.dumps({"training": {"d_model": "wide"}})))
    toy("toy_missing", lambda d: (d / "model.safetensors").unlink())
    bert = make_bert(root / "bert")
    out["bert"] = str(bert)

    def real(name, change):
        d = root / name
        shutil.copytree(bert, d)
        change(d)
        out[name] = str(d)

    def no_tokenizer(d):
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
            (d / f).unlink(missing_ok=True)

    real("real_no_tokenizer", no_tokenizer)
    real("real_config_garbage", lambda d: (d / "config.json").write_text("<html>not a config</html>"))
    real("real_weights_garbage", lambda d: (d / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{garbage"))
    real("real_weights_truncated", lambda d: (d / "model.safetensors").write_bytes(
        (bert / "model.safetensors").read_bytes()[:2000]))
    out["gpt2"] = str(make_gpt2(root / "gpt2"))
    out["remote"] = str(make_remote_code(root / "remote"))
    return out


# ------------------------------------------------------------------------------- the CLI

CLI_CASES = {  # name: argv, with {file} placeholders
    "steps 0": ["sample", "--variant", "masked", "--steps", "0"],
    "n negative": ["sample", "--variant", "masked", "--n", "-1"],
    "temperature negative": ["sample", "--variant", "masked", "--temperature", "-1"],
    "blocks do not divide": ["sample", "--variant", "masked", "--steps", "5", "--block-length", "3"],
    "block length not a divisor": ["sample", "--variant", "masked", "--block-length", "4"],
    "unknown variant": ["sample", "--variant", "flow"],
    "steps not a number": ["sample", "--variant", "masked", "--steps", "six"],
    "unknown command": ["paint"],
    "unknown flag": ["sample", "--variant", "masked", "--colour", "red"],
    "toy weights header garbage": ["sample", "--variant", "masked", "--checkpoint", "{toy_header_garbage}"],
    "toy weights truncated": ["sample", "--variant", "masked", "--checkpoint", "{toy_truncated}"],
    "toy json garbage": ["eval", "--variant", "masked", "--quick", "--checkpoint", "{toy_json_garbage}"],
    "toy json wrong fields": ["eval", "--variant", "masked", "--quick", "--checkpoint", "{toy_json_wrong}"],
    "toy files missing": ["sample", "--variant", "masked", "--checkpoint", "{toy_missing}"],
    "toy checkpoint of another variant": ["sample", "--variant", "uniform", "--checkpoint",
                                          str(training.default_checkpoint("masked"))],
    "toy checkpoint folder absent": ["sample", "--variant", "masked", "--checkpoint", "/nowhere/at/all"],
    "train zero steps": ["train", "--variant", "masked", "--steps", "0", "--out", "/tmp/dlm-never-written"],
    "real folder without tokenizer": ["generate", "--model", "{real_no_tokenizer}"],
    "real config garbage": ["generate", "--model", "{real_config_garbage}"],
    "real weights header garbage": ["generate", "--model", "{real_weights_garbage}"],
    "real weights truncated": ["generate", "--model", "{real_weights_truncated}"],
    "real path absent": ["generate", "--model", "/nowhere/model"],
    "real model without a mask token": ["generate", "--model", "{gpt2}"],
    "real model needing remote code": ["generate", "--model", "{remote}"],
    "prompt too long": ["generate", "--model", "{bert}", "--prompt", "the cat " * 400],
    "prompt only special tokens": ["generate", "--model", "{bert}", "--prompt", "[CLS] [SEP]"],
    "prompt holding the mask token": ["generate", "--model", "{bert}", "--prompt", "the [MASK] sat"],
    "generation length 0": ["generate", "--model", "{bert}", "--gen-length", "0"],
    "generation steps 0": ["generate", "--model", "{bert}", "--steps", "0"],
    "generation blocks do not divide": ["generate", "--model", "{bert}", "--gen-length", "8", "--block-length", "3"],
    "generation steps per block": ["generate", "--model", "{bert}", "--gen-length", "8", "--steps", "3",
                                   "--block-length", "4"],
    "generation temperature negative": ["generate", "--model", "{bert}", "--temperature", "-0.5"],
    "generation strategy ancestral": ["generate", "--model", "{bert}", "--strategy", "ancestral"],
    "infill position out of range": ["infill", "--variant", "masked", "--pin", "9=dog"],
    "infill unknown unit": ["infill", "--variant", "masked", "--pin", "1=zebra"],
    "infill impossible pins": ["infill", "--variant", "masked", "--pin", "1=is", "--pin", "2=friend"],
    "infill malformed pin": ["infill", "--variant", "masked", "--pin", "banana"],
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_cli_says_one_line_and_fails(case, files, capsys):
    argv = [a.format(**files) if a.startswith("{") else a for a in CLI_CASES[case]]
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own exit, made one line by cli.OneLineParser
        code = e.code
    out, err = capsys.readouterr()
    assert code not in (0, None), (case, out)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, err)
    assert "Traceback" not in err and len(lines[0]) < 1200


def test_a_real_cli_process_too(files):
    """One case end to end in its own process: exit code 2, one line, no traceback."""
    from conftest import run_cli

    p = run_cli("generate", "--model", files["real_no_tokenizer"], check=False)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().count("\n") == 0 and "no tokenizer files" in p.stderr


# ------------------------------------------------------------------------------- the pages


def real_page(**state):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/real.py")
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    return at


def messages(at) -> str:
    """The page's errors and warnings as read (Markdown escapes removed)."""
    return " ".join(e.value for e in [*at.error, *at.warning]).replace("\\", "")


@pytest.mark.parametrize("folder, words", [
    ("real_no_tokenizer", "no tokenizer files"),
    ("real_config_garbage", "Could not load"),
    ("real_weights_garbage", "Could not load"),
    ("real_weights_truncated", "Could not load"),
    ("gpt2", "no mask token"),
    ("remote", "trust_remote_code"),
])
def test_the_real_page_explains_a_model_it_cannot_load(files, folder, words):
    at = real_page(real_source="Hub id or local path", real_custom=files[folder])
    assert not at.exception, at.exception
    assert words in messages(at)
    assert not [b for b in at.button if b.key == "real_generate"]  # nothing to generate with


GOOD = {"real_source": "Hub id or local path", "real_gen_length": 8, "real_steps": 8, "real_block_length": 8}


@pytest.mark.parametrize("change, words", [
    ({"real_prompt": "the cat " * 400}, "shorten the prompt"),
    ({"real_prompt": "[CLS] [SEP]"}, "only special tokens"),
    ({"real_prompt": "the [MASK] sat"}, "contains the mask token"),
    ({"real_block_length": 3}, "must be divisible"),
    ({"real_steps": 3, "real_block_length": 4}, "must be divisible"),
])
def test_a_bad_generation_is_refused_and_the_previous_one_stays(files, change, words):
    at = real_page(real_custom=files["bert"], real_prompt="the cat", **GOOD)
    next(b for b in at.button if b.key == "real_generate").click().run()
    before = at.session_state["real_traj"]
    assert not at.exception and not at.error
    for k, v in change.items():
        at.session_state[k] = v
    next(b for b in at.button if b.key == "real_generate").click().run()
    assert not at.exception, at.exception
    assert words in messages(at)
    assert at.session_state["real_traj"] is before  # the generation on screen is kept
    assert "Top-k of one position" in " ".join(h.value for h in at.subheader)


def test_an_empty_prompt_generates_from_an_empty_canvas(files):
    at = real_page(real_custom=files["bert"], real_prompt="", **GOOD)
    next(b for b in at.button if b.key == "real_generate").click().run()
    assert not at.exception and not at.error
    traj = at.session_state["real_traj"]
    assert traj.settings["prompt"] == "" and traj.n_steps == 8


@pytest.mark.parametrize("text, words", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not JSON"),
    (b"[1, 2, 3]", "not a trajectory"),
    (json.dumps({"variant": "masked", "vocab": ["a"], "initial": [0], "records": [{"step": 1}]}).encode(),
     "not a trajectory"),
    (json.dumps({"variant": "masked", "vocab": ["a", "b"], "mask_id": None, "initial": [0, 7],
                 "records": []}).encode(),
     "not in its vocabulary"),
])
def test_a_file_that_is_not_a_trajectory_is_refused(text, words):
    with pytest.raises(ValueError, match=words):
        trajectory_file.load(text)


def test_a_branch_field_that_does_not_fit_is_refused():
    from dlm_core.variants.registry import VARIANTS

    v = VARIANTS["masked"]
    d = v.trajectory(training.load_checkpoint(training.default_checkpoint("masked"))[0], 6, 0).to_dict()
    d["branch"] = {"from_step": 2, "edited": [0, 1], "pins": []}
    with pytest.raises(ValueError, match="edited state"):
        trajectory_file.load(json.dumps(d))


def test_reverse_settings_that_do_not_fit_say_so():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/reverse.py")
    at.query_params.update({"variant": "masked", "steps": "5", "block_length": "3", "strategy": "random"})
    at.run()
    assert not at.exception, at.exception
    assert "don't work together" in messages(at) and "divisible" in messages(at)


# ------------------------------------------------------------- broken shipped files (item 5)

PAGES = ["home.py", "lessons.py", "forward.py", "reverse.py", "compare.py", "train.py", "poll.py", "infill.py",
         "real.py"]


@pytest.fixture()
def broken_shipped(tmp_path, monkeypatch):
    """A copy of the shipped checkpoints with the masked weights garbage and the uniform description gone."""
    from pages import _shipped_model

    shutil.copytree(training.CHECKPOINTS, tmp_path / "checkpoints")
    (tmp_path / "checkpoints" / "masked" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{bad")
    (tmp_path / "checkpoints" / "uniform" / "checkpoint.json").unlink()
    monkeypatch.setattr(training, "CHECKPOINTS", tmp_path / "checkpoints")
    _shipped_model.clear()
    yield tmp_path / "checkpoints"
    _shipped_model.clear()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_serves_with_broken_shipped_checkpoints(broken_shipped, page):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(f"pages/views/{page}")
    at.run()
    assert not at.exception, (page, at.exception)
    text = messages(at)
    if "masked" in text and "cannot be loaded" in text:  # a page that needs the broken model says which file
        assert "masked/model.safetensors" in text and "git checkout -- assets/checkpoints/masked" in text
        assert "python -m dlm_core train --variant masked" in text


def test_pages_that_need_a_broken_model_name_the_file(broken_shipped):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/reverse.py")
    at.query_params["variant"] = "uniform"
    at.run()
    assert not at.exception
    text = messages(at)
    assert "uniform" in text and "checkpoint.json" in text and "--variant uniform" in text
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/forward.py")  # masked noise needs no model: the page works
    at.run()
    assert not at.exception and not at.error and at.session_state["fwd_variant"] == "masked"


def test_pages_never_read_each_others_settings():
    """Infill's `steps` ("auto") and a lesson's `step` share names with the Reverse page's settings."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/infill.py")
    at.run()
    assert at.session_state["steps"] == "auto"
    at.switch_page("pages/views/reverse.py")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["steps"] == 6 and at.session_state["step"] == 6  # the masked default, its last step
    at.query_params.clear()  # a click in the sidebar opens a page without the last page's link
    at.switch_page("pages/views/lessons.py")
    at.run()
    assert not at.exception and at.session_state["step"] == 1
