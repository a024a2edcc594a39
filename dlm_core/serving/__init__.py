"""Serving: the server's plumbing shared by every page and layer.

- `jobs`: the one server-wide queue of heavy work (trainings, generations), cancellable;
- `worker_process`: a queue worker's own Python process, and the cooperative `Cancelled`.

May import: nothing of dlm_core (any layer may import it).
"""
