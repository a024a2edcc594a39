"""Variants: what a diffusion LM is, one module per kind, and the registry that names them.

- `base`: the interface every toy variant implements (`Variant`, `PageText`), maths only;
- `registry`: the plain dict of variants (`VARIANTS`, `get`): a new variant is its module and one line;
- `masked`, `uniform`, `gaussian` (+ `gaussian_bound`, its NELBO): the three toy variants;
- `denoiser`: the small transformer the toy variants share;
- `evaluate`: one `EvalReport` per variant (bound and sampled quality against the exact language);
- `hf_adapter`: real masked LMs from the Hugging Face hub or a local path (loading, canvas, generation).

May import: the foundations, sampling, serving.
"""
