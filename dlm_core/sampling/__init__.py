"""Sampling: the reverse process, one `step()` at a time.

- `sampler`: the contract every sampler keeps (a config dataclass whose `option()` fields are the
  controls pages draw, `step()` -> `StepOutput`, `run_trajectory`, `sample_batched`);
- `masked_sampler`: the masked reverse process for toy and real models (ancestral, the fixed-count
  strategies, threshold decoding, blocks, guidance, ReMDM), with `masked_prediction` (its private
  helper: exact draws and top k over a large vocabulary);
- `branching`: continuing a run from step k with pins and re-masks.

May import: the foundations (dlm_core.toy_language, schedules, trajectory) only.
"""
