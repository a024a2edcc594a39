"""A per-replica cap on sessions: past `DLM_MAX_SESSIONS` connected browser tabs (unset or 0: no cap), a new
tab gets one plain sentence that the server is full instead of everyone's pages slowing down together.

A tab is admitted on its first script run while fewer than the cap are admitted, and stays admitted while
it is connected (a reload is a new tab: it takes a freed place). Places are freed as Streamlit's runtime
sees tabs disconnect. Behind the department's balancer (deploy/), new tabs go to the replica with the
fewest connections, so a replica fills only when the others are about as full."""

from __future__ import annotations

import os
import threading

import streamlit as st

_ADMITTED: set[str] = set()
_LOCK = threading.Lock()


def cap() -> int:
    try:
        return max(0, int(os.environ.get("DLM_MAX_SESSIONS") or 0))
    except ValueError:
        return 0


def _session() -> tuple[str | None, object | None]:
    """(this tab's session id, the runtime), or (None, None) outside a server (AppTest)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not Runtime.exists():
        return None, None
    return ctx.session_id, Runtime.instance()


def admitted(session_id: str, runtime, limit: int) -> bool:
    """Whether this tab has (or now gets) one of the `limit` places; frees the places of tabs gone."""
    with _LOCK:
        if session_id in _ADMITTED:
            return True
        _ADMITTED.intersection_update({s for s in _ADMITTED if runtime.is_active_session(s)})
        if len(_ADMITTED) < limit:
            _ADMITTED.add(session_id)
            return True
        return False


def admit_or_stop() -> None:
    """Call first on every run: a tab beyond the cap is told plainly and its run stops there."""
    limit = cap()
    if not limit:
        return
    session_id, runtime = _session()
    if session_id is None or admitted(session_id, runtime, limit):
        return
    st.error(f"This server is full: it serves {limit} students at once and every place is taken. Wait a minute "
             "and reload the page (a place frees when someone closes their tab); if it stays full, tell your "
             "teacher.", icon=":material/group_off:")
    st.stop()
