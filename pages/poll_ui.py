"""The live class poll's panels, for any page that asks a question (the Class poll page now, Lessons later).

    teacher_panel(question_id, prompt, choices, answer_index, why)   # open a room / move it on, code, link,
                                                                       # live tally, "Reveal the answer"
    student_panel(code)                                                # the room's question, answer, change it
    join_form()                                                        # type a room code

The room lives in the URL: `?room=CODE` (what students get: `<app>/poll?room=CODE`) and, in the
teacher's own link only, `?host=KEY`, the key that lets this browser reveal and move the room on (a
reload or a restarted server keeps the teacher in charge). A student's voter token is made by the
browser and kept in its localStorage, so a reload or a second tab is still one voter. All the
storing is in dlm_core.poll; every text drawn here is escaped."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import streamlit as st

from dlm_core.classroom import poll
from dlm_core.render.safe_html import Markup, html_of, join
from pages import PageState, md_escape, setting, show_html

ROOM, HOST = "room", "host"  # the URL keys (and session_state keys)
POLL_PATH = "poll"  # url_path of the Class poll page in app.py
TALLY_EVERY_S = 1.5
STUDENT_EVERY_S = 3.0  # what a student waits, at most, to see a reveal or the next question

# Made in the browser: a random token kept in localStorage (one voter per browser, across reloads and
# tabs), handed to the server once. No personal data; "" where storage is blocked (then a per-session one).
_VOTER_JS = """
const KEY = "dlm-poll-voter";
export default function (component) {
  let v = "";
  try {
    v = window.localStorage.getItem(KEY) || "";
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(v)) {
      const b = new Uint8Array(16);
      window.crypto.getRandomValues(b);
      v = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      window.localStorage.setItem(KEY, v);
    }
  } catch (e) { v = ""; }
  if (component.data.known !== v) component.setStateValue("voter", v);
}
"""

_CSS = """<style>
.poll-code {font: 700 clamp(2.4rem, 4.6vw, 5.5rem)/1.1 ui-monospace, SFMono-Regular, Menlo, monospace;
            letter-spacing: .08em; margin: .1rem 0 .4rem 0; white-space: nowrap;}
.poll-code span + span {margin-left: .3em;}
.poll-code-label {font-size: 1.05rem; opacity: .75; margin-top: .4rem;}
</style>"""
_COMPONENTS: dict = {}


def store() -> poll.PollStore:
    """The app's poll store; where it cannot be opened, the page says why and stops."""
    try:
        return poll.default_store()
    except (RuntimeError, OSError, sqlite3.Error) as e:
        st.error(f"The class poll is not available: {md_escape(e)}", icon=":material/error:")
        st.stop()


# ------------------------------------------------------------------------- the URL


@dataclass
class PollView:
    """The room this session is in, in the link (?room=CODE, and the teacher's ?host=KEY); _set_room writes it."""

    room: str = setting("", max_len=2 * poll.CODE_LENGTH, widget="url", in_link=False)
    host: str = setting("", max_len=64, widget="url", in_link=False)


def room_from_url(notices=None) -> tuple[str, str]:
    """(room code, teacher key) of this session, from ?room= and ?host= (a room link followed in this tab
    opens that room); ("", "") if none. Notices about the link go to `notices`."""
    view = PageState(PollView)
    code, host = poll.normalise_code(view.bind(ROOM)), str(view.bind(HOST))
    _set_room(code, host)  # back in the URL after a visit to another page
    view.finish(notices)
    return code, host


def _set_room(code: str, host: str = "") -> None:
    st.session_state[ROOM], st.session_state[HOST] = code, host
    for k, v in ((ROOM, code), (HOST, host)):
        if v:
            st.query_params[k] = v
        elif k in st.query_params:
            del st.query_params[k]
    PageState().remember_link()


def leave_room() -> None:
    _set_room("", "")


def join_link(code: str) -> str:
    """<app>/poll?room=CODE, from the address this browser uses (a relative link where it is unknown)."""
    url = st.context.url
    if not url:
        return f"/{POLL_PATH}?room={quote(code)}"
    parts = urlsplit(url)
    base = parts.path.rsplit("/", 1)[0] if not parts.path.endswith("/") else parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/{POLL_PATH}", f"room={quote(code)}", ""))


# ------------------------------------------------------------------------ drawing


def _code_block(code: str) -> None:
    half = len(code) // 2  # shown in two groups, easier to read off a projector (typed with or without the gap)
    groups = join([html_of("<span>{g}</span>", g=g) for g in (code[:half], code[half:]) if g])
    show_html(html_of('{css}<div class="poll-code-label">Room code</div><div class="poll-code" '
                      'data-testid="poll-code" aria-label="{code}">{groups}</div>', css=Markup(_CSS), code=code,
                      groups=groups))


def _tally_bars(tally: dict[str, int], answer_index: int | None, mine: str | None = None) -> None:
    total = sum(tally.values())
    for i, (choice, n) in enumerate(tally.items()):
        marks = (" · **the answer**" if i == answer_index else "") + (" · yours" if choice == mine else "")
        pct = 100 * n / total if total else 0
        st.progress(n / total if total else 0.0, text=f"**{md_escape(choice)}**: {n} ({pct:.0f} %){marks}")


def _revealed(room: poll.Room) -> None:
    if room.answer_index is not None:
        st.success(f"The answer: **{md_escape(room.choices[room.answer_index])}**", icon=":material/check_circle:")
    if room.why:
        st.markdown(f"**Why.** {md_escape(room.why)}")


# ------------------------------------------------------------------------- teacher


def teacher_panel(question_id: str, prompt: str, choices, answer_index: int | None = None, why: str = "",
                  *, hours: float = 4, key: str = "poll") -> str | None:
    """The teacher's side for one question: "Open a room" (or, in a room on another question, "Ask this
    question"), then the room code, the join link, the live tally and "Reveal the answer".
    Returns the room code (None: no room yet). The answer and `why` reach students only on reveal.
    `key` prefixes the widget keys (two panels on one page need two keys)."""
    s = store()
    code, host = room_from_url()
    is_host = bool(code and host) and s.is_host(code, host)
    if not is_host:
        if code and host:
            st.error(f"Room {md_escape(code)} has expired, or this teacher link does not belong to it. "
                     "Open a new room.", icon=":material/error:")
        if st.button("Open a room", type="primary", icon=":material/meeting_room:", key=f"{key}_open_{question_id}"):
            host_key = poll.new_host_key()
            new = s.open_room(question_id, prompt, list(choices), hours, answer_index=answer_index, why=why,
                              host_key=host_key)
            _set_room(new, host_key)
            st.rerun()
        st.caption(f"Opens a room for this question; students join with its code. A room lasts {hours:g} hours.")
        return None

    room = s.room(code)
    left, right = st.columns(2, gap="large")
    with left:
        _code_block(code)
        st.markdown("Students join at")
        st.code(join_link(code), language=None)
        st.caption("Keep this page's own address to yourself: it holds your teacher key. Share the link above.")
        if st.button("Close and open another room", key=f"{key}_leave", icon=":material/logout:"):
            leave_room()
            st.rerun()
    with right:
        if room is not None and room.question_id != question_id:
            st.info(f"The room is on another question: {md_escape(room.prompt)}", icon=":material/swap_horiz:")
            if st.button("Ask this question now", type="primary", key=f"{key}_ask_{question_id}",
                         icon=":material/forward:"):
                s.set_question(code, question_id, prompt, list(choices), answer_index=answer_index, why=why)
                st.rerun()
        _teacher_live(code, key)
    return code


def _live_room(code: str, gone: str):
    """(store, room), or (store, None) after saying the room is `gone`."""
    s = store()
    room = s.room(code)
    if room is None:
        st.error(f"Room {md_escape(code)} has {gone}.", icon=":material/timer_off:")
    return s, room


@st.fragment(run_every=TALLY_EVERY_S)
def _teacher_live(code: str, key: str) -> None:
    s, room = _live_room(code, "expired")
    if room is None:
        return
    st.markdown(f"#### {md_escape(room.prompt)}")
    tally = s.tally(code, room.question_id)
    total = sum(tally.values())
    st.metric("Answers", total)
    show = room.revealed or st.toggle("Show the split before revealing", value=True, key=f"{key}_show_split")
    if show:
        _tally_bars(tally, room.answer_index)
    if room.revealed:
        _revealed(room)
    else:  # a callback: it runs before the (fragment) rerun that then draws the revealed answer
        st.button("Reveal the answer", type="primary", icon=":material/visibility:", key=f"{key}_reveal",
                  on_click=_try, args=(s.reveal, code, room.question_id))
    if (err := st.session_state.pop("_poll_error", None)) is not None:
        st.error(md_escape(err), icon=":material/error:")


def _try(action, *args) -> None:
    """Run a store operation from a button's callback; a refusal is shown on the next run."""
    try:
        action(*args)
    except poll.PollError as e:
        st.session_state["_poll_error"] = str(e)


# ------------------------------------------------------------------------- student


def _voter() -> str | None:
    """This browser's voter token (None until the browser has handed it over, a moment after loading)."""
    if "renderer" not in _COMPONENTS:
        _COMPONENTS["renderer"] = st.components.v2.component("dlm_poll_voter", js=_VOTER_JS)
    known = st.session_state.get("_poll_voter")
    result = _COMPONENTS["renderer"](key="poll_voter_component", data={"known": known}, default={"voter": None},
                                     on_voter_change=lambda: None, height="content")
    v = result.get("voter") if hasattr(result, "get") else getattr(result, "voter", None)
    if v is None:
        return None
    if not poll.VOTER_RE.fullmatch(v or ""):  # storage blocked: one voter per session
        v = st.session_state.get("_poll_session_voter") or poll.new_voter()
        st.session_state["_poll_session_voter"] = v
    st.session_state["_poll_voter"] = v
    return v


def join_form() -> None:
    """Type a room code (lower case, spaces and dashes are fine)."""
    with st.form("poll_join", border=True):
        typed = st.text_input("Room code", max_chars=24, placeholder="e.g. K7PX3MQA", key="poll_join_code")
        if st.form_submit_button("Join", type="primary", icon=":material/login:"):
            code = poll.normalise_code(typed)
            if not code:
                st.error("Type the room code your teacher shows.")
            else:
                _set_room(code)
                st.rerun()


def student_panel(code: str) -> None:
    """The room's current question for a student: pick an answer, send it, change it until the teacher
    reveals; then the answer, why, and how the class answered. An unknown or expired code says so."""
    if store().room(code) is None:
        st.error(f"There is no open room with the code **{md_escape(code)}**. Check it with your teacher "
                 f"(codes are {poll.CODE_LENGTH} letters and digits); a room closes a few hours after it was "
                 "opened.", icon=":material/error:")
        if st.button("Try another code", key="poll_retry", icon=":material/refresh:"):
            leave_room()
            st.rerun()
        return
    voter = _voter()
    if voter is None:
        st.caption("Joining the room ...")
        return
    _student_live(code, voter)


@st.fragment(run_every=STUDENT_EVERY_S)
def _student_live(code: str, voter: str) -> None:
    s, room = _live_room(code, "closed")
    if room is None:
        return
    st.caption(f"Room {md_escape(code)}")
    st.markdown(f"### {md_escape(room.prompt)}")
    mine = s.my_answer(code, room.question_id, voter)
    tag = f"{code}_{room.question_id}"
    if (err := st.session_state.pop("_poll_error", None)) is not None:
        st.error(f"Your answer was not recorded: {md_escape(err)}.", icon=":material/error:")
    if room.revealed:
        if mine is not None:
            right = room.answer_index is not None and room.choices[room.answer_index] == mine
            (st.success if right else st.warning)(f"You answered **{md_escape(mine)}**.")
        _revealed(room)
        st.markdown("How the class answered:")
        _tally_bars(s.tally(code, room.question_id), room.answer_index, mine)
        return
    changing_key = f"poll_changing_{tag}"
    if mine is not None and not st.session_state.get(changing_key, False):
        st.success(f"Your answer: **{md_escape(mine)}**. The teacher will reveal the answer.",
                   icon=":material/how_to_vote:")
        st.button("Change your answer", key=f"poll_change_{tag}", icon=":material/edit:",
                  on_click=st.session_state.__setitem__, args=(changing_key, True))
        return
    pick_key = f"poll_pick_{tag}"
    pick = st.radio("Your answer", room.choices, index=room.choices.index(mine) if mine in room.choices else None,
                    key=pick_key, format_func=md_escape)

    def send() -> None:
        st.session_state[changing_key] = False
        _try(s.answer, code, room.question_id, voter, st.session_state[pick_key])

    st.button("Send my answer", type="primary", key=f"poll_send_{tag}", disabled=pick is None, icon=":material/send:",
              on_click=send)
