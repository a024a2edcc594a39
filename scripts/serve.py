"""Start the Streamlit app (what scripts/run.sh, deploy/department.py and the browser tests run).

The pages are declared with st.navigation in app.py. Streamlit also has an older
auto-discovery of a `pages/` folder beside the entry script, which it uses for the very
first request after the server starts if that folder exists; a deep link such as
/reverse opened first would then show a spurious "Page not found" dialog before
app.py's navigation takes over. Telling Streamlit up front that the app does not use
the pages folder removes that race; `streamlit run app.py` still works without it.

No first-use races: every page's script runs in its own thread, and two threads importing a heavy
module for the first time at once can see it half-initialised (`partially initialized module 'pandas'
has no attribute 'Series'`, seen with 60 students arriving together). So `preload()` imports, before the
server accepts anyone, every module a page needs: the heavy libraries (and the parts of them that load
lazily on first attribute access: transformers' Auto classes, plotly's figure types), all of dlm_core,
the pages' helper modules, and the poll's store. tests/test_first_use.py checks that opening every page
afterwards imports nothing new, and opens every page from 20 sessions at the same instant.
"""

import importlib
import os
import pkgutil
import sys
import time

# One thread per torch operation in the server (unless OMP_NUM_THREADS says otherwise): the toy models are
# tiny, and with several OpenMP threads per operation every session's sampling fights over the cores with
# the other sessions' scripts and the job queue's workers (a 6-step trajectory: 0.014 s median on one
# thread, 0.14 s median and 1.7 s worst on two while the machine is busy; bench/class_load.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")

HEAVY = ["numpy", "pandas", "pyarrow", "torch", "safetensors", "plotly.graph_objects", "plotly.io",
         "sqlalchemy", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "psycopg", "segno",
         "PIL.Image", "transformers", "tokenizers", "huggingface_hub", "tqdm.contrib.logging",
         # what loading the embedded model (a BERT-style masked LM) and generating imports on first use
         "transformers.modeling_utils", "transformers.modeling_layers", "transformers.masking_utils",
         "transformers.generation", "transformers.generation.utils", "transformers.tokenization_python",
         "transformers.processing_utils", "transformers.feature_extraction_utils", "transformers.audio_utils",
         "transformers.video_utils", "transformers.models.align", "transformers.models.bert",
         "transformers.models.bert.configuration_bert", "transformers.models.bert.modeling_bert",
         "transformers.models.bert.tokenization_bert",
         # what Streamlit itself imports on a session's first run
         "streamlit.material_icon_names", "streamlit.runtime.scriptrunner.magic_funcs",
         "streamlit.components.v2.manifest_scanner", "packaging.tags",
         # what a plotly chart and a pandas table import when first drawn
         "plotly.offline", "plotly.tools", "plotly.animation", "plotly.io._json", "pyarrow.pandas_compat",
         "pyarrow.vendored.version"]
LAZY_ATTRIBUTES = {  # modules that import their parts on first attribute access
    "transformers": ["AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoTokenizer", "PreTrainedModel",
                     "BertTokenizerFast", "BertForMaskedLM"],
    "plotly.graph_objects": ["Figure", "Scatter", "Bar", "Heatmap", "Box", "Histogram", "Layout"],
}
APP_PACKAGES = ["dlm_core", "pages"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _warm_plotly() -> None:
    """Build and serialise a figure with the trace and layout parts the pages use: plotly imports the class
    of each part on first use (small leaf modules, but first use is what races)."""
    import plotly.graph_objects as go

    fig = go.Figure([go.Bar(x=[1], y=[1], error_x={"array": [0]}, error_y={"array": [0]},
                            marker={"pattern": {"shape": "/"}, "line": {"width": 1}}),
                     go.Scatter(x=[1], y=[1], error_y={"array": [0]}, line={"width": 1}, marker={"size": 3}),
                     go.Heatmap(z=[[1]], colorbar={"title": {"text": "p"}}), go.Box(y=[1]), go.Histogram(x=[1])],
                    layout={"legend": {"orientation": "h"}, "margin": {"l": 0}, "title": {"text": "t"},
                            "xaxis": {"title": {"text": "x"}, "tickfont": {"size": 10}},
                            "yaxis": {"title": {"text": "y"}, "tickfont": {"size": 10}},
                            "annotations": [{"text": "a"}], "shapes": [{"type": "line"}]})
    fig.to_json()


def preload() -> float:
    """Import everything the pages need, once, in this (main) thread; returns the seconds it took."""
    t0 = time.perf_counter()
    for name in HEAVY:
        module = importlib.import_module(name)
        for attr in LAZY_ATTRIBUTES.get(name, []):
            getattr(module, attr)
    importlib.import_module("transformers.utils.logging")
    from PIL import Image  # its image plugins load on a first save (the favicon, the exports)

    Image.init()
    _warm_plotly()
    from transformers import AutoTokenizer  # its loader registers the tokenizer's modules on first use

    AutoTokenizer.from_pretrained(os.path.join(REPO, "assets", "embedded-model"))
    for package in APP_PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            if not info.name.startswith("pages.views") and not info.name.endswith("__main__"):  # scripts, not modules
                importlib.import_module(info.name)
    return time.perf_counter() - t0


if __name__ == "__main__":
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    PagesManager.uses_pages_directory = False
    sys.path.insert(0, REPO)
    if os.environ.get("DLM_PRELOAD", "1") != "0":
        print(f"preloaded the pages' modules in {preload():.1f} s", flush=True)
    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(cli.main())
