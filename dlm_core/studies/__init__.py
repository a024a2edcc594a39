"""Studies: numbers and summaries computed from the variants, no drawing.

- `training`: training a toy model, its checkpoints, and training through the job queue;
- `compare`: the Compare page's table and curves; `threshold_decoding`: threshold against fixed count;
- `infill` (the exact conditional and the model's exact infill) and `infill_run` (one run, end to end);
- `order_study` (+ `order_measures`, `order_real`): which positions a masked DLM commits first;
- `guidance`: classifier-free guidance on the toy language against its exact tilted target;
- `mid_flight`: units written mid-flight (a wrong early commit, a prefill) and their exact outcomes;
- `forward`: the forward process of any variant at one t, for the Forward page.

May import: the foundations, sampling, variants, serving.
"""
