"""Start the Streamlit app (what scripts/run.sh and the browser tests run).

The pages are declared with st.navigation in app.py. Streamlit also has an older
auto-discovery of a `pages/` folder beside the entry script, which it uses for the very
first request after the server starts if that folder exists; a deep link such as
/reverse opened first would then show a spurious "Page not found" dialog before
app.py's navigation takes over. Telling Streamlit up front that the app does not use
the pages folder removes that race; `streamlit run app.py` still works without it.
"""

import os
import sys

# One thread per torch operation in the server (unless OMP_NUM_THREADS says otherwise): the toy models are
# tiny, and with several OpenMP threads per operation every session's sampling fights over the cores with
# the other sessions' scripts and the job queue's workers (a 6-step trajectory: 0.014 s median on one
# thread, 0.14 s median and 1.7 s worst on two while the machine is busy; bench/class_load.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.web import cli  # noqa: E402

PagesManager.uses_pages_directory = False

if __name__ == "__main__":
    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(cli.main())
