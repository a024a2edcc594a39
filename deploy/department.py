"""A department on one machine, with one command: PostgreSQL for the poll, N replicas of the app, HAProxy in
front (session affinity, health checks), each a real server from Debian's packages or PyPI.

    PYTHONPATH=. .venv/bin/python deploy/department.py [--replicas 3] [--port 8600] [--folder data/department]
        [--max-sessions 60] [--workers 1] [--bind 127.0.0.1]

Then open http://127.0.0.1:8600 (the balancer); http://127.0.0.1:8690 shows the replicas' state. Ctrl-C
stops everything. The folder keeps the PostgreSQL cluster (initdb on first use, a random password in
`postgres/password`), each replica's own data folder and the logs (`logs/`: one per replica, HAProxy's
log of every request with the replica that served it, PostgreSQL's).

Ports: the balancer on --port, the replicas on the next N ports, PostgreSQL on --port - 1, the stats page on
--port + 90. Per replica: its Streamlit sessions, its caches (st.cache_data / cache_resource), its job
queue and worker processes, its data folder. Shared: the poll (PostgreSQL), and the cookie secret (so a
tab moved to another replica is still accepted there). Several machines: run the replicas on each with
DLM_POLL_DATABASE_URL pointing to one PostgreSQL server, and list them all in haproxy.cfg.

The class `Department` is what the tests and bench/department_load.py use."""

from __future__ import annotations

import argparse
import csv
import io
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from pg_local import LocalPostgres  # noqa: E402


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise RuntimeError("HAProxy is not installed: run scripts/setup.sh --dev (or apt-get install haproxy)")
    return found


def get(url: str, timeout: float = 2.0) -> tuple[int, dict, bytes]:
    """(status, headers with lower-case names, body) of a GET; status 0 where nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, b""
    except OSError:
        return 0, {}, b""


@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Department:
    """PostgreSQL, `replicas` app servers and HAProxy, started by `start()` and stopped by `stop()`."""

    def __init__(self, folder: str | os.PathLike, port: int, replicas: int = 3, *, max_sessions: int = 0,
                 workers: int | None = None, bind: str = "127.0.0.1", durable: bool = True,
                 pg_port: int | None = None, replica_ports: list[int] | None = None,
                 stats_port: int | None = None, extra_args: tuple[str, ...] = (), taskset: str | None = None):
        self.folder = Path(folder).resolve()
        self.logs = self.folder / "logs"
        self.port, self.bind = port, bind
        self.stats_port = stats_port or port + 90
        ports = replica_ports or [port + 1 + i for i in range(replicas)]
        self.replicas = [Replica(f"r{i + 1}", p) for i, p in enumerate(ports)]
        self.max_sessions, self.workers, self.extra_args = max_sessions, workers, extra_args
        self.taskset = taskset  # CPUs the replicas are pinned to (taskset -c), for measuring one core
        self.pg = LocalPostgres(self.folder / "postgres", pg_port or port - 1, durable=durable, password=True,
                                log=self.logs / "postgres.log")
        self.haproxy: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    # ---------------------------------------------------------------------------- start
    def start(self, timeout: float = 240) -> Department:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(self.folder.stat().st_mode | 0o011)  # PostgreSQL (user postgres) reaches its folder
        self.pg.start()
        self.upgrade_schema()
        secret = self.folder / "cookie-secret"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(32))
            secret.chmod(0o600)
        for r in self.replicas:
            self.start_replica(r, wait=False)
        for r in self.replicas:
            self.wait_healthy(r, timeout)
        self.start_haproxy()
        deadline = time.monotonic() + 30
        while set(self.states().values()) != {"UP"}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the balancer does not see every replica up: {self.states()}")
            time.sleep(0.3)
        return self

    def upgrade_schema(self) -> None:
        r = subprocess.run([sys.executable, "-m", "dlm_core.classroom.poll_schema", "upgrade", "--url", self.pg.url],
                           cwd=ROOT, capture_output=True, text=True, timeout=120, env=self._env())
        if r.returncode:
            raise RuntimeError(f"the poll's schema upgrade failed: {r.stderr.strip()}")
        print(r.stdout.strip().replace(self.pg.url.split(":")[2].split("@")[0], "***"), flush=True)

    def _env(self, replica: Replica | None = None) -> dict:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DLM_POLL_DATABASE_URL": self.pg.url}
        if replica is not None:
            env.update(DLM_DATA_DIR=str(self.folder / f"replica-{replica.name}"), DLM_REPLICA=replica.name,
                       STREAMLIT_SERVER_COOKIE_SECRET=(self.folder / "cookie-secret").read_text().strip())
            if self.max_sessions:
                env["DLM_MAX_SESSIONS"] = str(self.max_sessions)
            if self.workers:
                env["DLM_WORKERS"] = str(self.workers)
        return env

    def start_replica(self, r: Replica, wait: bool = True, timeout: float = 240) -> None:
        log = open(self.logs / f"replica-{r.name}.log", "a")  # noqa: SIM115 - the process keeps it
        pin = ["taskset", "-c", self.taskset] if self.taskset else []
        r.proc = subprocess.Popen(
            [*pin, sys.executable, "scripts/serve.py", "--server.port", str(r.port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false", *self.extra_args],
            cwd=ROOT, env=self._env(r), stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_healthy(r, timeout)

    def wait_healthy(self, r: Replica, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while get(r.url + "/_stcore/health")[0] != 200:
            if r.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {r.name} did not start; see {self.logs / f'replica-{r.name}.log'}")
            time.sleep(0.3)

    def start_haproxy(self) -> None:
        servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check cookie {r.name}" for r in self.replicas)
        cfg = string.Template((HERE / "haproxy.cfg.in").read_text()).substitute(
            bind=self.bind, port=self.port, stats_port=self.stats_port, servers=servers, maxconn=1000)
        path = self.folder / "haproxy.cfg"
        path.write_text(cfg)
        check = subprocess.run([haproxy_binary(), "-c", "-f", str(path)], capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"haproxy.cfg is not valid: {(check.stdout + check.stderr).strip()}")
        log = open(self.logs / "haproxy.log", "a")  # noqa: SIM115 - the process keeps it
        self.haproxy = subprocess.Popen([haproxy_binary(), "-db", "-f", str(path)], stdout=log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while get(self.url + "/_stcore/health")[0] != 200:
            if self.haproxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not start; see {self.logs / 'haproxy.log'}")
            time.sleep(0.2)

    # ------------------------------------------------------------------------- running
    def states(self) -> dict[str, str]:
        """{replica: UP / DOWN / ...} as the balancer sees it (its stats page as CSV)."""
        status, _, body = get(f"http://{self.bind}:{self.stats_port}/;csv")
        if status != 200:
            return {}
        rows = csv.DictReader(io.StringIO(body.decode().lstrip("# ")))
        return {row["svname"]: row["status"].split()[0] for row in rows if row["pxname"] == "replicas"
                and row["svname"] not in ("BACKEND", "FRONTEND")}

    def kill(self, name: str) -> None:
        """Kill a replica at once (SIGKILL: as a crash)."""
        r = next(r for r in self.replicas if r.name == name)
        if r.proc is not None and r.proc.poll() is None:
            os.kill(r.proc.pid, signal.SIGKILL)
            r.proc.wait(timeout=30)

    def wait_state(self, name: str, state: str, timeout: float = 30) -> float:
        """Seconds until the balancer sees replica `name` in `state`."""
        t0 = time.monotonic()
        while self.states().get(name) != state:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"replica {name} is not {state} after {timeout} s: {self.states()}")
            time.sleep(0.1)
        return time.monotonic() - t0

    # ---------------------------------------------------------------------------- stop
    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=20)
        for r in self.replicas:
            if r.proc is not None and r.proc.poll() is None:
                r.proc.terminate()
        for r in self.replicas:
            if r.proc is not None:
                try:
                    r.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
                    r.proc.wait(timeout=10)
        self.pg.stop()

    def __enter__(self) -> Department:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--port", type=int, default=8600, help="the balancer's port")
    ap.add_argument("--folder", default=str(ROOT / "data" / "department"))
    ap.add_argument("--max-sessions", type=int, default=0, help="per replica (0: no cap)")
    ap.add_argument("--workers", type=int, default=None, help="job-queue workers per replica")
    ap.add_argument("--bind", default="127.0.0.1", help="the balancer's address (0.0.0.0: the whole network)")
    a = ap.parse_args()
    dept = Department(a.folder, a.port, a.replicas, max_sessions=a.max_sessions, workers=a.workers, bind=a.bind)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        dept.start()
        print(f"the department: {dept.url} ({len(dept.replicas)} replicas: "
              f"{', '.join(f'{r.name} :{r.port}' for r in dept.replicas)}; PostgreSQL :{dept.pg.port}); "
              f"the replicas' state: http://{dept.bind}:{dept.stats_port}/; logs in {dept.logs}. Ctrl-C stops it.",
              flush=True)
        while not stopping:
            time.sleep(1)
            for r in dept.replicas:  # a replica that died is started again (the balancer puts it back)
                if r.proc is not None and r.proc.poll() is not None:
                    print(f"replica {r.name} exited ({r.proc.returncode}); starting it again", flush=True)
                    dept.start_replica(r)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping ...", flush=True)
        dept.stop()


if __name__ == "__main__":
    main()
