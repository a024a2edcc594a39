"""The app served on a free port of 127.0.0.1 for a bench, until the bench stops it (one helper for all)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, *args: str, env: dict | None = None, log_path: Path | None = None) -> subprocess.Popen:
    """scripts/serve.py on 127.0.0.1:port with extra Streamlit `args` and environment `env`; returns once
    the health endpoint answers (at most 90 s). Its output goes to `log_path` (default: nowhere). A
    poll database named in this shell's environment is never used: a bench keeps its data to itself."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("DLM_POLL_DATABASE_URL", None)
    cmd = [sys.executable, "scripts/serve.py", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false", *args]
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("the app did not start" + (f"; see {log_path}" if log_path else ""))


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server started by `serve`: terminate, then kill if it has not exited within `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
