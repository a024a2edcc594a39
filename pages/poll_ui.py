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

import functools
import threading
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import streamlit as st

from dlm_core.classroom import poll, poll_view
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

_COMPONENTS: dict = {}
_COMPONENTS_LOCK = threading.Lock()


def unavailable(e: Exception) -> None:
    """The one sentence a teacher or student gets when the poll's database cannot be used."""
    st.error(f"The class poll is not available: {md_escape(e)}", icon=":material/error:")


def store() -> poll.PollStore | None:
    """The app's poll store; where it cannot be opened, the page says why (one sentence) and gets None:
    the rest of the page, and of the app, goes on."""
    try:
        return poll.default_store()
    except poll.PollUnavailable as e:
        unavailable(e)
        return None


def _says_unavailable(draw):
    """A panel or live view that says, in one sentence, that the database failed (instead of a traceback)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        try:
            return draw(*args, **kwargs)
        except poll.PollUnavailable as e:
            unavailable(e)
            return None
    return wrapper


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


def _tally_bars(tally: dict[str, int], answer_index: int | None, mine: str | None = None, *,
                big: bool = False) -> None:
    show_html(poll_view.tally_bars(tally, answer_index, mine, big=big))


def _revealed(room: poll.Room) -> None:
    if room.answer_index is not None:
        st.success(f"The answer: **{md_escape(room.choices[room.answer_index])}**", icon=":material/check_circle:")
    if room.why:
        st.markdown(f"**Why.** {md_escape(room.why)}")


# ------------------------------------------------------------------------- teacher


@_says_unavailable
def teacher_panel(question_id: str, prompt: str, choices, answer_index: int | None = None, why: str = "",
                  *, hours: float = 4, key: str = "poll") -> str | None:
    """The teacher's side for one question: "Open a room" (or, in a room on another question, "Ask this
    question"), then the room code with the QR code of the join link, the link, the live tally and "Reveal
    the answer", large enough for a projector; below, every question asked in the room and a CSV of the
    tallies. Returns the room code (None: no room yet, or no database: it says so). The answer and `why`
    reach students only on reveal. `key` prefixes the widget keys (two panels on one page need two keys)."""
    s = store()
    if s is None:
        return None
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
    left, right = st.columns([6, 5], gap="large")
    with left:
        show_html(poll_view.room_block(code, join_link(code)))
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
    _room_record(code, key)
    return code


def _live_room(code: str, gone: str):
    """(store, room), or (store, None) after saying the room is `gone`."""
    s = poll.default_store()  # PollUnavailable: said by the caller's _says_unavailable
    room = s.room(code)
    if room is None:
        st.error(f"Room {md_escape(code)} has {gone}.", icon=":material/timer_off:")
    return s, room


@st.fragment(run_every=TALLY_EVERY_S)
@_says_unavailable
def _teacher_live(code: str, key: str) -> None:
    s, room = _live_room(code, "expired")
    if room is None:
        return
    show_html(poll_view.prompt_block(room.prompt))
    tally = s.tally(code, room.question_id)
    total = sum(tally.values())
    st.metric("Answers", total)
    show = room.revealed or st.toggle("Show the split before revealing", value=True, key=f"{key}_show_split")
    if show:
        _tally_bars(tally, room.answer_index, big=True)
    if room.revealed:
        _revealed(room)
    else:  # a callback: it runs before the (fragment) rerun that then draws the revealed answer
        st.button("Reveal the answer", type="primary", icon=":material/visibility:", key=f"{key}_reveal",
                  on_click=_try, args=(s.reveal, code, room.question_id))
    if (err := st.session_state.pop("_poll_error", None)) is not None:
        st.error(md_escape(err), icon=":material/error:")


def _try(action, *args) -> None:
    """Run a store operation from a button's callback; a refusal (or a database that failed) is shown on
    the next run."""
    try:
        action(*args)
    except (poll.PollError, poll.PollUnavailable) as e:
        st.session_state["_poll_error"] = str(e)


@st.fragment
@_says_unavailable
def _room_record(code: str, key: str) -> None:
    """Every question asked in the room so far with its tally, and the tallies as CSV (counts only)."""
    if not st.toggle("Show every question asked in this room", key=f"{key}_record"):
        return
    history = poll.default_store().history(code)
    if not history:
        return
    for n, q in enumerate(history, 1):
        st.markdown(f"**{n}. {md_escape(q.prompt)}**" + ("" if q.revealed else " (not revealed)"))
        _tally_bars(q.tally, q.answer_index)
    st.download_button("Download the tallies (CSV)", poll.tallies_csv(history), file_name=f"poll-{code}.csv",
                       mime="text/csv", icon=":material/download:", key=f"{key}_csv")
    st.caption("Counts only: nothing about who answered what.")


# ------------------------------------------------------------------------- student


def _voter() -> str | None:
    """This browser's voter token (None until the browser has handed it over, a moment after loading)."""
    with _COMPONENTS_LOCK:  # registered once per server, whichever session comes first
        if "renderer" not in _COMPONENTS:
            _COMPONENTS["renderer"] = st.components.v2.component("dlm_poll_voter", js=_VOTER_JS)
    known = st.session_state.get("_poll_voter")
    result = _COMPONENTS["renderer"](key="poll_voter_component", data={"known": known}, default={"voter": None},
                                     on_voter_change=lambda: None, height="content")
    v = result.get("voter") if hasattr(result, "get") else getattr(result, "voter", None)
    if v is None:  # not handed over (yet) in this visit of the page: the one this session already has, if any
        return known
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


@_says_unavailable
def student_panel(code: str) -> None:
    """The room's current question for a student: pick an answer, send it, change it until the teacher
    reveals; then the answer, why, and how the class answered. An unknown or expired code says so."""
    s = store()
    if s is None:
        return
    if s.room(code) is None:
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
@_says_unavailable
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
