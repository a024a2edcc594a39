"""Streamlit entry point: `streamlit run app.py`. The pages are listed here with st.navigation;
the page scripts live in pages/views/ so that Streamlit's pages/ auto-discovery (which only
looks at top-level pages/*.py) never competes with it, even on a deep link like /reverse."""

import streamlit as st

from dlm_core.render.theme import app_css, favicon_png

# the favicon is the app's own picture (a material icon would be fetched from a font server, which
# fails offline); the style sheet sets what the theme cannot (caption contrast, focus ring, reduced motion)
st.set_page_config(page_title="Diffusion LM visualiser", page_icon=favicon_png(), layout="wide")
st.html(app_css())

from pages.capacity import admit_or_stop  # noqa: E402

admit_or_stop()  # DLM_MAX_SESSIONS: past it, a new tab is told plainly that this server is full

PAGES = [
    st.Page("pages/views/home.py", title="Home", icon=":material/home:", default=True, url_path="welcome"),
    st.Page("pages/views/lessons.py", title="Lessons", icon=":material/school:", url_path="lessons"),
    st.Page("pages/views/forward.py", title="Forward process", icon=":material/fast_forward:", url_path="forward"),
    st.Page("pages/views/reverse.py", title="Reverse process", icon=":material/fast_rewind:", url_path="reverse"),
    st.Page("pages/views/infill.py", title="Infill", icon=":material/edit_note:", url_path="infill"),
    st.Page("pages/views/compare.py", title="Compare variants", icon=":material/compare_arrows:",
            url_path="compare"),
    st.Page("pages/views/order_study.py", title="Unmasking order", icon=":material/format_list_numbered:",
            url_path="order"),
    st.Page("pages/views/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/views/training_lab.py", title="Training lab", icon=":material/science:", url_path="lab"),
    st.Page("pages/views/data_study.py", title="Data-constrained", icon=":material/dataset:", url_path="data"),
    st.Page("pages/views/real.py", title="Real model", icon=":material/menu_book:", url_path="real"),
    st.Page("pages/views/poll.py", title="Class poll", icon=":material/how_to_vote:", url_path="poll"),
]



def home_alias() -> None:
    """/home opens Home (the default page lives at /)."""
    st.switch_page(PAGES[0])


st.navigation([*PAGES, st.Page(home_alias, title="Home", url_path="home", visibility="hidden")]).run()
