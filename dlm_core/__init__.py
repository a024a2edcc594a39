"""dlm_core: all the logic of the diffusion LM visualiser, no Streamlit.

The top level holds the foundations every part shares: the exact toy language (`toy_language`) and the larger
one of the data-constrained study (`toy_language_large`), the noise schedules (`schedules`), the Trajectory
contract (`trajectory`, and `trajectory_file` to read a shared one), and the command line (`cli`).
The rest lives in subpackages, each importing only the layers below it (tests/test_layout.py checks it):

    serving/    the job queue and its worker processes                             (imports nothing)
    sampling/   the sampler contract, the masked reverse process, branching        (foundations)
    variants/   the variant interface, its registry, one module per variant        (+ sampling, serving)
    studies/    training, evaluation studies, comparisons, infill, orders          (+ variants)
    render/     palette, safe HTML, SVG and plotly figures, the stage, exports     (foundations, sampling)
    classroom/  lessons, questions, glossary, the class poll                       (everything above)
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (assets/ and docs/ live here)
ASSETS = ROOT / "assets"
