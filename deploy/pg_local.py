"""A PostgreSQL server of our own on 127.0.0.1, from Debian's `postgresql` package: made with initdb in a
folder, started with pg_ctl on a port, stopped with pg_ctl. The tests start a throwaway one (no fsync,
trust on loopback); deploy/department.py keeps one under its data folder (durable, a password).

Run as root (as CI does), the server runs as the `postgres` user the package creates: initdb refuses
root. Nothing here touches the machine's own clusters (pg_ctlcluster) or listens beyond 127.0.0.1."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

DB_USER = "dlm"
DB_NAME = "dlm"


def bindir() -> Path:
    """The newest /usr/lib/postgresql/N/bin with initdb (RuntimeError with the install command if none)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/setup.sh --dev "
                           "(or apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_owner(cmd: list[str]) -> list[str]:
    """Root runs the server's commands as `postgres`; anyone else as themselves."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class LocalPostgres:
    """One server: `start()` (initdb on first use), `url`, `stop()`; a context manager too."""

    def __init__(self, folder: str | os.PathLike, port: int, *, durable: bool = True, password: bool = True,
                 log: str | os.PathLike | None = None):
        self.folder = Path(folder).resolve()
        self.data = self.folder / "pgdata"
        self.port = port
        self.durable = durable
        self.use_password = password
        self.log = Path(log) if log else self.folder / "postgres.log"
        self.secret = self.folder / "password"

    @property
    def url(self) -> str:
        pw = f":{self.secret.read_text().strip()}" if self.use_password else ""
        return f"postgresql://{DB_USER}{pw}@127.0.0.1:{self.port}/{DB_NAME}"

    def _chown(self, *paths: Path) -> None:
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for p in paths:
                os.chown(p, pg.pw_uid, pg.pw_gid)

    def init(self) -> None:
        """initdb, once (a folder that already holds a cluster is kept as it is, with its data)."""
        if (self.data / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the server runs as `postgres`: it must be able to reach its folder
            blocked = [p for p in self.folder.parents if not os.stat(p).st_mode & 0o001]
            if blocked:
                raise RuntimeError(f"the user postgres cannot enter {blocked[0]} (chmod o+x it, or choose "
                                   "another folder)")
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.folder, self.data)
        args = [str(bindir() / "initdb"), "-D", str(self.data), "-U", DB_USER, "-E", "UTF8", "--no-instructions",
                "--auth-local=trust"]
        if self.use_password:
            if not self.secret.exists():
                self.secret.write_text(secrets.token_urlsafe(24) + "\n")
                self.secret.chmod(0o600)
            pwfile = self.folder / ".pwfile"
            shutil.copy(self.secret, pwfile)
            self._chown(pwfile)
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth-host=trust"]
        try:
            subprocess.run(_as_owner(args), check=True, capture_output=True, text=True, timeout=120)
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"initdb failed: {e.stderr.strip()[-800:]}") from None
        finally:
            if self.use_password:
                (self.folder / ".pwfile").unlink(missing_ok=True)

    def start(self, timeout: float = 60) -> LocalPostgres:
        self.init()
        if not self.log.exists():
            self.log.touch()
        self._chown(self.log)
        opts = [f"-p {self.port}", "-c listen_addresses=127.0.0.1", f"-k {self.data}", "-c max_connections=300"]
        if not self.durable:  # a throwaway server for the tests: nothing to keep across a crash
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        subprocess.run(_as_owner([str(bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                                  " ".join(opts), "-w", "-t", str(int(timeout)), "start"]),
                       check=True, capture_output=True, text=True, timeout=timeout + 10)
        self._create_database(timeout)
        return self

    def _create_database(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                pw = self.secret.read_text().strip() if self.use_password else None
                with psycopg.connect(host="127.0.0.1", port=self.port, user=DB_USER, password=pw, dbname="postgres",
                                     autocommit=True, connect_timeout=5) as c:
                    if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
                        c.execute(f"CREATE DATABASE {DB_NAME}")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(_as_owner([str(bindir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                           capture_output=True, text=True, timeout=60)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
