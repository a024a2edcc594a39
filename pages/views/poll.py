"""Class poll: a teacher opens a room on a question, students answer from their phones, the tally is live.

Only the wiring: the panels are in pages/poll_ui.py, the store in dlm_core/poll.py."""

import streamlit as st

from dlm_core.classroom.questions import QUESTIONS
from pages import computed_answer, poll_ui


def question(question_id: str) -> tuple:
    """(question_id, prompt, choices, answer_index, why) for the panels."""
    q, a = QUESTIONS[question_id], computed_answer(question_id)
    return q.id, q.prompt, list(q.choices), a.index, a.why


st.title("Class poll")
notices = st.container()
store = poll_ui.store()  # where it cannot be opened, the page says why (one sentence) and stops here
if store is None:
    st.stop()
code, host = poll_ui.room_from_url(notices)
try:
    is_teacher = bool(code and host) and store.is_host(code, host)
except poll_ui.poll.PollUnavailable as e:
    poll_ui.unavailable(e)
    st.stop()


def pick_question() -> tuple:
    """The teacher's question, from the lessons' questions (the room's current one when it is one of them)."""
    room = store.room(code) if is_teacher else None
    if "poll_q" not in st.session_state:
        st.session_state.poll_q = room.question_id if room is not None and room.question_id in QUESTIONS \
            else next(iter(QUESTIONS))
    qid = st.selectbox("Question", list(QUESTIONS), key="poll_q", format_func=lambda q: QUESTIONS[q].prompt)
    return question(qid)


if is_teacher:
    st.caption("You are the teacher of this room. Students answer at the link below; the tally follows live.")
    poll_ui.teacher_panel(*pick_question())
elif code:
    if host:
        st.warning("This teacher link does not belong to an open room: joining as a student.",
                   icon=":material/warning:")
    poll_ui.student_panel(code)
else:
    st.caption("A live poll for a class: the teacher opens a room on a question and shows its code; students "
               "answer from any browser, anonymously; the teacher watches the tally and reveals the answer.")
    join, teach = st.columns(2, gap="large")
    with join:
        st.subheader("Join a room")
        poll_ui.join_form()
    with teach:
        st.subheader("Open a room")
        poll_ui.teacher_panel(*pick_question())
