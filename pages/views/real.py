"""Real model: generate with a Hugging Face masked diffusion LM, live, then replay it.

The sampler's controls are the real-model variant's declared options (dlm_core.variants.real), drawn by the
same code as the toy pages'; the page's own settings (model, prompt, length, views) are declared below."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.classroom.glossary import terms_in
from dlm_core.render import svg_figures
from dlm_core.render.safe_html import Markup, html_of, join
from dlm_core.render.stage import stage_data, waiting_stage_data
from dlm_core.sampling.block_cache import cache_note
from dlm_core.serving import jobs
from dlm_core.studies import threshold_decoding
from dlm_core.variants import hf_adapter
from dlm_core.variants.real import VARIANT as REAL
from dlm_core.variants.registry import VARIANTS
from pages import (
    SPEEDS,
    PageState,
    export_buttons,
    glossary_popover,
    md_escape,
    options_text,
    real_model,
    setting,
    show_html,
    stage,
)
from pages.branch_ui import branches, edit_panel, run_picker
from pages.jobs_ui import follow, job_queue, queued, session_id

SPEED_NAMES = {v: k for k, v in SPEEDS.items()}

MASK_GLYPH = "▢"
GUESS_S_PER_TOKEN_STEP = 0.004  # the embedded model on one core, before the queue has timed a generation
WORDS = ["DLM (diffusion language model)", "pin", "branch", "stage (player)", "scrub",
         "masked (absorbing) diffusion", "embedded model", "Hugging Face hub",
         "checkpoint", "remote code", "sampler", "token / unit", "semi-autoregressive block", "strategy",
         "low-confidence", "margin", "entropy (strategy)", "random (strategy)", "fixed-count sampler",
         "temperature", "guidance (CFG)", "seed", "end-of-sequence token", "prompt", "token × step grid",
         "unconditional", "canvas", "[MASK]", "noise", "parameters", "CPU", "top-k", "confidence (score)", "commit",
         "trajectory", "JSON", "HTML", "logits", "LLaDA", "reverse process", "SUBS", "confidence threshold",
         "forward pass", "autoregressive model"]


st.title("Real model: a masked diffusion LM writing real text")
st.caption(
    "The same sampler and views as the toy pages, on a real model: the embedded Shakespeare model "
    "(offline, CPU), a hub checkpoint, or any local path."
)
glossary_box = st.container()  # filled once the model is known (a chat model's prompt gets its template)
notice_box = st.container()

OPTION_WORDS = terms_in(options_text(REAL.config_class))  # what the sampler controls' labels and help say
SOURCES = ("Embedded default", "Suggested hub checkpoint", "Hub id or local path")
PROMPT = "to be or not to be, that is the"


@dataclass
class RealView:
    """The Real page's own settings, each in its link (the sampler's are RealSamplerConfig's)."""

    source: str = setting(SOURCES[0], label="Model", choices=SOURCES, widget="radio", url="real_source")
    suggested: str = setting(next(iter(hf_adapter.SUGGESTED)), label="Checkpoint",
                             choices=tuple(hf_adapter.SUGGESTED), show=lambda n: f"{n} ({hf_adapter.SUGGESTED[n]})",
                             url="real_suggested")
    custom: str = setting("", label="Hub id or local path", max_len=300, widget="text", url="real_custom")
    gen_length: int = setting(64, label="Generation length (tokens)", lo=4, hi=512, widget="number",
                              url="real_gen_length")
    suppress_eos: bool = setting(False, label="Suppress end-of-sequence tokens", widget="checkbox",
                                 url="real_suppress_eos")
    speed: float = setting(0.3, label="Replay speed", choices=tuple(SPEEDS.values()), show=SPEED_NAMES.get,
                           url="real_speed")
    prompt_rows: bool = setting(False, label="Show the prompt's rows in the grid", url="real_prompt_rows")
    present: bool = setting(False, widget="url", in_link=False)  # presenter mode (also F on the stage)
    uncond: bool = setting(False, label="Unconditional (no prompt: an empty canvas)", url="real_uncond")
    prompt: str = setting(PROMPT, label="Prompt", max_len=2000, widget="textarea", url="real_prompt")
    step: int = setting(0, lo=0, widget="url", url="real_step")  # the step shown
    pos: int = setting(1, label="Position (numbered as the grid's rows)", lo=1, widget="number", url="real_pos")


view = PageState(RealView)
with st.sidebar:
    st.header("Model")
    source = view.widget("source", label_visibility="collapsed")
    if source == SOURCES[1]:
        name = view.widget("suggested")
    elif source == SOURCES[2]:
        name = view.widget("custom", placeholder="org/model or /path/to/model")
    else:
        name = ""
    # never taken from a link: running a checkpoint's own code is the user's explicit choice, here
    trust = st.checkbox("Allow remote code", key="real_trust", help=hf_adapter.REMOTE_CODE_WARNING)
    if trust:
        st.warning(hf_adapter.REMOTE_CODE_WARNING)

    st.header("Sampler")
    view.widget("gen_length", step=4)
    options = view.sampler(REAL.config_class)
    view.widget("suppress_eos")
    view.widget("speed")
    view.widget("prompt_rows")
    view.bind("present")

s = st.session_state
with st.status("Model", expanded=False) as status:
    try:
        status.update(label="Loading the model ...", state="running")
        lm = real_model(name.strip(), trust)
        status.update(label=f"Model ready: {lm.name} ({lm.n_params() / 1e6:.1f} M parameters, {lm.device.type}, "
                            f"mask token {lm.tokenizer.convert_ids_to_tokens(lm.mask_id)})", state="complete")
    except hf_adapter.ModelLoadError as e:
        status.update(label="The model could not be loaded", state="error", expanded=True)
        st.error(md_escape(e))
        view.finish(notice_box)
        glossary_popover(WORDS + OPTION_WORDS, where=glossary_box)
        st.stop()
glossary_popover(WORDS + OPTION_WORDS + (["chat template"] if lm.has_chat_template else []), where=glossary_box)

unconditional = view.widget("uncond")
view.bind("prompt")
prompt = "" if unconditional else view.widget(
    "prompt", height=80, label="Prompt" + (" (the model's chat template is applied)" if lm.has_chat_template else ""))

live = st.empty()


def likely_tokens(run, k: int, pos: int) -> list[int]:
    """The tokens a pin offers: the model's top predictions at step k + 1 and the token there now."""
    rec = run.records[k] if k < run.n_steps else None
    ids = list(rec.topk_ids[pos]) if rec is not None and rec.topk_ids and rec.topk_ids[pos] else []
    now = run.tokens_at(k)[pos]
    return ids + ([now] if now not in ids and now != run.mask_id else []) or [now]


def one_token(lm, text: str) -> int:
    """The id of a typed token; a clear error when the tokenizer makes it several (or none)."""
    ids = lm.tokenizer.encode(text.strip(), add_special_tokens=False)
    if len(ids) != 1:
        pieces = ", ".join(lm.token_text(i) for i in ids[:6])
        raise ValueError(f"“{text.strip()}” is {len(ids)} tokens for this tokenizer ({pieces}); type a single token")
    return ids[0]


def branch_real(lm, run, k: int, edits, seed: int):
    """The branch, computed in the server's job queue like a generation (a class's branches take turns)."""
    steps_left, gen_length = run.n_steps - k, int(run.settings.get("gen_length", run.length))

    def branch(report):  # in the queue's worker; a closed tab or an interrupted run ends it after a step
        return REAL.branch(lm, run, k, edits, seed, on_step=lambda rec, sampler: report(
            rec.step / sampler.config.steps, f"branch: step {rec.step} / {sampler.config.steps}"))

    job = queued(branch, kind="generate", cost=steps_left * gen_length, label=f"branch from step {k}",
                 hint_s=GUESS_S_PER_TOKEN_STEP * steps_left * gen_length, key="real_branch_stop",
                 stop_help="Stop this branch (the runs shown stay).")
    if job.state == jobs.DONE:
        return job.result
    if job.state == jobs.FAILED and isinstance(job.exception, ValueError):
        st.error(f"This branch cannot be made: {md_escape(job.exception)}")
    elif job.state == jobs.FAILED:
        st.error(f"The branch failed: {md_escape(job.error)}")
    return None


def masked_text(text: str) -> Markup:
    """The generated text so far, escaped, each mask as a grey box, in one block of running text."""
    boxes = join([html_of("{piece}", piece=piece) for piece in text.split(MASK_GLYPH)],
                 sep="<span style='color:#595959'>▢</span>")
    return html_of("<div style='font-size:1.2rem;line-height:1.6'>{text}</div>", text=boxes)


if st.button("Generate", type="primary", icon=":material/auto_awesome:", key="real_generate"):
    if s.get("real_gen_job") is not None:  # a new Generate replaces the one still waiting or running
        s.real_gen_job.cancel("replaced by a new generation")
    try:
        cfg = REAL.sampler_config(gen_length=int(view.gen_length), **options)
    except ValueError as e:
        st.error(f"These settings don't work: {md_escape(e)}")
    else:
        gen_length, suppress_eos = int(view.gen_length), bool(view.suppress_eos)
        model_name, in_worker = name.strip(), hf_adapter.generates_in_worker_process(lm)

        def generate_job(job, lm=lm, prompt=prompt, cfg=cfg):  # runs in the queue's worker
            if in_worker:  # a small CPU model: in the worker's own process, off the server's interpreter lock
                return job.run_in_process("dlm_core.variants.hf_adapter:generate_in_worker", {
                    "name": model_name, "trust_remote_code": trust, "prompt": prompt, "gen_length": gen_length,
                    "config": cfg, "suppress_eos": suppress_eos}, on_message=lambda p: setattr(job, "progress", p))

            def on_step(rec, sampler, text):
                job.progress = (rec.step, sampler.config.steps, text)
                job.check()  # a Stop (or a closed tab) ends the generation after this step

            return REAL.generate(lm, prompt, gen_length, cfg, suppress_eos=suppress_eos, on_step=on_step)

        s.real_gen_job = job_queue().submit(generate_job, kind="generate", owner=session_id(),
                                            cost=cfg.steps * gen_length, label=f"generate {gen_length} tokens",
                                            hint_s=GUESS_S_PER_TOKEN_STEP * cfg.steps * gen_length)

gen = s.get("real_gen_job")
if gen is not None:  # waiting in the server's queue or running: stream its steps as they arrive
    stop_box, bar = st.empty(), st.empty()
    if stop_box.button("Stop", icon=":material/stop:", key="real_stop",
                       help="Stop this generation (the previous one, if any, stays below)."):
        gen.cancel("stopped")
    streamed = [None]

    def show_progress() -> None:
        progress = gen.progress
        if progress is not None and progress is not streamed[0]:
            streamed[0] = progress
            step, steps, text = progress
            bar.progress(step / steps, text=f"step {step} / {steps}")
            show_html(masked_text(text), where=live)

    follow(gen, bar, on_progress=show_progress)
    s.real_gen_job = None
    stop_box.empty()
    bar.empty()
    live.empty()
    if gen.state == jobs.DONE:
        s.real_traj = gen.result
        s.real_step = gen.result.n_steps
    elif gen.state == jobs.FAILED and isinstance(gen.exception, ValueError):  # the previous generation stays below
        st.error(f"These settings don't work: {md_escape(gen.exception)}")
    elif gen.state == jobs.FAILED:
        st.error(f"The generation failed: {md_escape(gen.error)}")
    elif gen.cancel_reason == "stopped":
        st.info("Generation stopped." + (" The previous one is still below." if s.get("real_traj") else ""),
                icon=":material/stop:")

traj = s.get("real_traj")
if traj is None:
    view.finish(notice_box)
    st.info("Choose a prompt and press **Generate**: the generation animates as the steps arrive, "
            "then the stage replays it.")
    if view.present:  # presenter mode from the link: the stage waits, large, for the first generation
        stage(waiting_stage_data(int(view.gen_length), lm.mask_id, f"{lm.name}: nothing generated yet",
                                 "Press Esc (or F) to leave presenter mode, then Generate: the generation replays "
                                 "here, large."), key="real_waiting")
    st.stop()

gen_end = traj.gen_start + traj.settings["gen_length"]
rows = list(range(traj.length)) if view.prompt_rows else list(range(traj.gen_start, gen_end))
view.bind("step", default=traj.n_steps, hi=traj.n_steps)
s.real_step = min(max(int(s.real_step), 0), traj.n_steps)
if traj.settings.get("prompt"):
    st.markdown(f"**Prompt:** {md_escape(traj.settings['prompt'])}")
runs = [traj] + branches("real", str(id(traj)))  # this generation and the branches made from it here
data = stage_data(traj, title=f"{traj.settings.get('model', '')}", start=s.real_step, interval_s=view.speed,
                  present=bool(view.present), rows=rows, branches=runs[1:], picked=s.get("real_stage_pick"))
k = stage(data, key="real_stage")
st.caption("What to notice: masked tokens (▢) turn into words a few at a time and never change once written; "
           "when there are several blocks (dashed lines in the grid), they fill from left to right.")
st.caption(threshold_decoding.passes_note(traj, unit="token"))
st.caption(cache_note(traj))
s.real_step = k
j = run_picker("real", runs)
edit_panel("real", runs, j, k, list(range(traj.gen_start, gen_end)), unit_choices=likely_tokens,
           make_branch=lambda run, at, edits, seed: branch_real(lm, run, at, edits, seed),
           pin_meaning=VARIANTS["masked"].text.pin, parse_unit=lambda text: one_token(lm, text))
traj = runs[j]  # the views and downloads below follow the chosen run
with st.expander("How? Blocks and guidance"):
    st.markdown(
        "Coloured text: each token in the colour of its state at this step (the prompt underlined). Dashed lines "
        "in the grid are block boundaries: blocks are filled left to right, each with steps / blocks steps "
        "(semi-autoregressive, LLaDA). Guidance: the unconditional pass masks the prompt, and the logits used "
        "are $u + (w + 1)(c - u)$ (Nie et al. 2024). Hover over the grid to read a token."
    )
left, right = st.columns(2)
with left:
    st.subheader(f"Top-k of one position at step {k}")
    first, last = traj.gen_start + 1, gen_end
    s.real_pos = min(max(int(view.bind("pos", default=first, lo=first, hi=last)), first), last)
    pos = view.widget("pos", lo=first, hi=last)
    if k == 0:
        st.info("Step 0 is the empty canvas; move to step 1 or later.")
    else:
        show_html(svg_figures.distribution_html(traj, k, int(pos) - 1))
        st.caption(f"The model's top 10 at position {pos}, step {k}; outlined: the token after the step.")
with right:
    st.subheader("Confidence of each commit")
    show_html(svg_figures.confidence_svg(traj, k))
    st.caption("The score each committed token had when it was chosen.")

export_buttons(traj, k, "real-trajectory")
view.finish(notice_box)
