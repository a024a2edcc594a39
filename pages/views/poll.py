"""Class poll: a teacher opens a room on a question, students answer from their phones, the tally is live.

Only the wiring: the panels are in pages/poll_ui.py, the store in dlm_core/poll.py."""

import streamlit as st

from pages import poll_ui, url_notices

# A placeholder list: the Lessons page will hand its own questions (prompt, choices, computed answer)
# to poll_ui.teacher_panel. (question_id, prompt, choices, answer_index, why)
QUESTIONS = [
    ("demo-1", "Which variant never changes a unit once it has written it (plain sampler, no remasking)?",
     ["masked", "uniform", "gaussian"], 0,
     "A masked model only ever turns [MASK] into a unit; once written, a unit stays. Uniform noise can swap any "
     "unit at any step, and the Gaussian variant moves every position a little at every step."),
    ("demo-2", "At t = 1, what is left of the sentence in the masked forward process?",
     ["every unit is [MASK]", "about half of the units", "the sentence, unchanged"], 0,
     "Each unit is masked with probability t, so at t = 1 every unit is masked: the reverse process starts "
     "from nothing but masks."),
    ("demo-3", "Can a toy model's NELBO on the whole language fall below the entropy H?",
     ["yes, with enough training", "no: H is the floor", "only for the masked variant"], 1,
     "The NELBO bounds the negative log-likelihood from above, and no model's log-likelihood beats the "
     "entropy H of the language it is scored on."),
]
BY_ID = {q[0]: q for q in QUESTIONS}

st.title("Class poll")
notices = st.container()
store = poll_ui.store()  # where it cannot be opened, the page says why and stops here
code, host = poll_ui.room_from_url()
is_teacher = bool(code and host) and store.is_host(code, host)
url_notices(notices)


def pick_question() -> tuple:
    """The teacher's question, from the list (the room's current one when it is in the list)."""
    room = store.room(code) if is_teacher else None
    if "poll_q" not in st.session_state:
        st.session_state.poll_q = room.question_id if room is not None and room.question_id in BY_ID \
            else QUESTIONS[0][0]
    qid = st.selectbox("Question", list(BY_ID), key="poll_q", format_func=lambda q: BY_ID[q][1])
    return BY_ID[qid]


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
