"""A job queue worker's own Python process (jobs.py hands it the work that would otherwise hold the
server's interpreter lock), and the cooperative cancel both share."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any


class Cancelled(Exception):
    """Raised inside a job (by `Job.check`) once it has been cancelled."""


class WorkerError(RuntimeError):
    """A job's function failed in its worker process (the message keeps the child's traceback)."""


class WorkerProcess:
    """One persistent Python process (spawned, so it shares nothing with the server's threads) that runs
    functions by name for one queue worker, one at a time.

    Work that is pure Python over tiny tensors (training the toy models: thousands of small operations a
    second) holds the interpreter's lock nearly all the time: in a thread of the server it slows every
    other session's script run by its share of that lock, however many cores the machine has. In its own
    process it only takes its core. `call(target, kwargs)` runs `target(send=..., cancelled=..., **kwargs)`
    there: `send(message)` streams a message back, `cancelled()` says whether the job was cancelled (the
    cancel is sent to the process as soon as the job is cancelled). The return value comes back pickled;
    tensors should travel as bytes (e.g. safetensors). Started on first use (the imports take a few
    seconds once); a process that died is replaced by the next call.
    """

    def __init__(self):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="dlm-worker-process")
        self._proc.start()
        child.close()
        self._broken = False

    def alive(self) -> bool:
        return not self._broken and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def call(self, target: str, kwargs: dict, cancelled: Callable[[], bool] = lambda: False,
             on_message: Callable[[Any], None] | None = None, poll_s: float = 0.05) -> Any:
        try:
            return self._call(target, kwargs, cancelled, on_message, poll_s)
        except WorkerError as e:
            if not hasattr(e, "child_type"):  # the process itself is gone: the next call gets a new one
                self._broken = True
            raise

    def _call(self, target, kwargs, cancelled, on_message, poll_s) -> Any:
        try:
            self._conn.send(("call", target, kwargs))
        except OSError as e:
            raise WorkerError(f"the worker process has gone ({e})") from e
        cancel_sent = False
        while True:
            if not cancel_sent and cancelled():
                try:
                    self._conn.send(("cancel",))
                except OSError as e:
                    raise WorkerError(f"the worker process has gone ({e})") from e
                cancel_sent = True
            try:
                ready = self._conn.poll(poll_s)
            except (EOFError, OSError) as e:
                raise WorkerError(f"the worker process has gone ({e})") from e
            if not ready:
                if not self._proc.is_alive():
                    raise WorkerError(f"the worker process died (exit code {self._proc.exitcode})")
                continue
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError) as e:
                raise WorkerError(f"the worker process has gone ({e})") from e
            if kind == "message":
                if on_message is not None:
                    on_message(payload)
            elif kind == "result":
                return payload
            elif kind == "cancelled":
                raise Cancelled("cancelled")
            else:  # "error": (type name, message, traceback text)
                name, message, text = payload
                error = WorkerError(f"{name}: {message}")
                error.child_type, error.child_traceback = name, text
                if name == "ValueError":  # a setting that does not work: the page says so, as in a thread
                    raise ValueError(message) from error
                raise error

    def close(self) -> None:
        try:
            self._conn.close()
        except OSError:
            pass
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()


def _worker_main(conn) -> None:
    """The loop of a WorkerProcess: one call at a time until the server closes the pipe."""
    import importlib
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which then ends its workers
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] != "call":
            continue  # a cancel that arrived after its call had finished
        _, target, kwargs = request
        state = {"cancelled": False}

        def cancelled(state=state) -> bool:
            while not state["cancelled"] and conn.poll(0):
                if conn.recv()[0] == "cancel":
                    state["cancelled"] = True
            return state["cancelled"]

        def send(message) -> None:
            conn.send(("message", message))

        try:
            module, name = target.split(":")
            result = getattr(importlib.import_module(module), name)(send=send, cancelled=cancelled, **kwargs)
        except Cancelled:
            conn.send(("cancelled", None))
        except BaseException as e:  # noqa: BLE001 - sent to the server, which keeps it on the job
            conn.send(("error", (type(e).__name__, str(e), traceback.format_exc())))
        else:
            conn.send(("result", result))
