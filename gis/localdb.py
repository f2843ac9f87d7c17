"""The embedded PostGIS cluster: initdb + pg_ctl on a private Unix socket, no TCP port.

When run as root the server runs as the ``postgres`` OS user (initdb refuses root); that user must
reach the data folder, so a data folder under a root-only directory is moved to /var/tmp.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVER_OPTIONS = {
    "listen_addresses": "''",
    "shared_buffers": "256MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_connections": "100",
    "log_min_messages": "warning",
    # Queries here are short; JIT compilation costs more than it saves (seconds on some).
    "jit": "off",
    "timezone": "'Asia/Shanghai'",
}


class LocalClusterError(RuntimeError):
    """The embedded cluster could not be set up or started."""


def _postgres_bindir() -> Path:
    """Directory of initdb/pg_ctl, preferring PostgreSQL 15 (Debian's layout)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    preferred = [p for p in found if "/15/" in p] or found
    if preferred:
        return Path(preferred[0]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise LocalClusterError(
        "PostgreSQL server binaries not found: install postgresql-15-postgis-3 "
        "(scripts/setup does this on Debian)"
    )


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _postgres_can_reach(path: Path) -> bool:
    """Whether the postgres OS user can traverse to (and write in) ``path``'s nearest parent."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-w", str(probe), "-a", "-x", str(probe)],
        check=False,
        capture_output=True,
    )
    return result.returncode == 0


@dataclass(frozen=True)
class LocalCluster:
    """A project-local PostgreSQL cluster with PostGIS, reached on a private socket."""

    pgdata: Path
    port: int = 5432

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> LocalCluster:
        """The cluster of ``data_dir`` (moved to /var/tmp if postgres cannot reach it)."""
        pgdata = data_dir.resolve() / "pg"
        if _running_as_root() and not _postgres_can_reach(pgdata.parent):
            digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:10]
            pgdata = Path("/var/tmp") / f"minqing-{digest}" / "pg"
            log.info("postgres cannot reach %s; cluster kept in %s", data_dir, pgdata)
        return cls(pgdata=pgdata)

    @property
    def socket_dir(self) -> Path:
        """The private socket directory (the cluster's own folder)."""
        return self.pgdata

    def url(self, database: str) -> str:
        """SQLAlchemy URL for ``database`` on this cluster."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if _running_as_root():
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def initialised(self) -> bool:
        """Whether initdb has run."""
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster (trust auth on the private socket only)."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if _running_as_root():
            shutil.chown(self.pgdata, "postgres", "postgres")
            shutil.chown(self.pgdata.parent, "postgres", "postgres")
        self.pgdata.chmod(0o700)
        bindir = _postgres_bindir()
        done = self._run(
            str(bindir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", check=False,
        )
        if done.returncode != 0:
            raise LocalClusterError(f"initdb failed: {done.stderr.strip()}")
        options = {**SERVER_OPTIONS, "unix_socket_directories": f"'{self.socket_dir}'",
                   "port": str(self.port)}
        with (self.pgdata / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
            for key, value in options.items():
                conf.write(f"{key} = {value}\n")

    def running(self) -> bool:
        """Whether the server is up (pg_ctl status)."""
        if not self.initialised():
            return False
        status = self._run(str(_postgres_bindir() / "pg_ctl"), "-D", str(self.pgdata), "status",
                           check=False)
        return status.returncode == 0

    def _clear_stale_pid(self) -> None:
        # A postmaster.pid left by a killed server blocks the next start when its PID was reused.
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists() or self.running():
            return
        log.warning("removing stale %s", pid_file)
        pid_file.unlink()

    def start(self) -> bool:
        """Start the server if needed; return True when this call started it."""
        if not self.initialised():
            self.init()
        if self.running():
            return False
        self._clear_stale_pid()
        logfile = self.pgdata / "server.log"
        done = self._run(
            str(_postgres_bindir() / "pg_ctl"), "-D", str(self.pgdata), "-l", str(logfile),
            "-w", "-t", "60", "start", check=False,
        )
        if done.returncode != 0:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise LocalClusterError(f"pg_ctl start failed: {done.stderr.strip()}\n{tail}")
        return True

    def stop(self) -> None:
        """Stop the server cleanly (fast shutdown) if it runs."""
        if self.running():
            self._run(str(_postgres_bindir() / "pg_ctl"), "-D", str(self.pgdata), "-w",
                      "-m", "fast", "stop")

    def ensure_database(self, database: str) -> None:
        """Create ``database`` if missing (PostGIS is created by the migrations)."""
        psql = str(_postgres_bindir() / "psql")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"
        found = self._run(psql, "-h", str(self.socket_dir), "-p", str(self.port), "-U",
                          "postgres", "-d", "postgres", "-tAc", query)
        if found.stdout.strip() != "1":
            self._run(psql, "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                      "-d", "postgres", "-c", f'CREATE DATABASE "{database}"')

    def copy_database(self, template: str, database: str) -> None:
        """Create ``database`` as a copy of ``template`` (which must have no open sessions)."""
        psql = str(_postgres_bindir() / "psql")
        self._run(psql, "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-c", f'CREATE DATABASE "{database}" TEMPLATE "{template}"')

    def drop_database(self, database: str) -> None:
        """Drop ``database`` if it exists (tests use this for a clean start)."""
        psql = str(_postgres_bindir() / "psql")
        self._run(psql, "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
