"""Start the Streamlit app (what scripts/run.sh and the browser tests run).

The pages are declared with st.navigation in app.py. Streamlit also has an older
auto-discovery of a `pages/` folder beside the entry script, which it uses for the very
first request after the server starts if that folder exists; a deep link such as
/reverse opened first would then show a spurious "Page not found" dialog before
app.py's navigation takes over. Telling Streamlit up front that the app does not use
the pages folder removes that race; `streamlit run app.py` still works without it.
"""

import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

PagesManager.uses_pages_directory = False

if __name__ == "__main__":
    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(cli.main())
