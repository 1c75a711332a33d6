"""A team tracking server on this machine: ``python -m src.runs.server start --dir DIR``
starts ``mlflow server`` on a PostgreSQL cluster kept in ``DIR``, and ``stop --dir DIR``
stops both.

``DIR`` holds everything the server keeps: ``pgdata/`` (the cluster, created on the first
start with the system's ``initdb``; it listens on a Unix socket in that folder only, never
on TCP, and admits only the ``mlflow`` role with the password in ``postgres_password``),
``artifacts/`` (``mlflow server --artifacts-destination``: clients send artifacts to
the server over HTTP, so they need no shared filesystem), ``mlflow.log`` and
``mlflow.pid``. A later ``start`` on the same ``DIR`` reopens the same store. The server
binds to 127.0.0.1 unless told otherwise, and ``start`` prints the
``export MLFLOW_TRACKING_URI=...`` line to use.

PostgreSQL refuses to run as root: started by root, the cluster belongs to the
unprivileged ``postgres_user`` and its commands run through ``runuser``. Defaults:
``conf/server.yaml``. Bad input ends with one line naming the option and exit status 1,
before anything is created.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from src.runs.config import CONF_DIR

#: The database and the role mlflow server uses.
DATABASE = ROLE = "mlflow"
#: Longest Unix socket path the kernel accepts (sun_path holds 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
#: Where Debian and Ubuntu install each PostgreSQL version's programs.
DEBIAN_POSTGRES = Path("/usr/lib/postgresql")


class ServerError(RuntimeError):
    """The server cannot start or stop; the message says why in one line."""


@dataclass(frozen=True)
class Layout:
    """Where the server keeps each thing under its folder."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def password(self) -> Path:
        return self.root / "postgres_password"

    @property
    def log(self) -> Path:
        return self.root / "mlflow.log"

    @property
    def pid(self) -> Path:
        return self.root / "mlflow.pid"

    @property
    def socket(self) -> Path:
        return self.pgdata / ".s.PGSQL.5432"


def find_postgres_bin(configured: str | None) -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``configured``, else the one on PATH,
    else the newest version under /usr/lib/postgresql."""
    if configured:
        folder = Path(configured)
        if not all((folder / tool).is_file() for tool in ("initdb", "pg_ctl")):
            raise ServerError(f"postgres_bin: {configured} holds no initdb and pg_ctl")
        return folder
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(
        (p for p in DEBIAN_POSTGRES.glob("*/bin") if (p / "initdb").is_file() and (p / "pg_ctl").is_file()),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    if not versions:
        raise ServerError(
            f"postgres_bin: no initdb and pg_ctl on PATH or in {DEBIAN_POSTGRES}/*/bin "
            "(install PostgreSQL, e.g. apt-get install postgresql)"
        )
    return versions[-1]


def _owner(user: str) -> pwd.struct_passwd | None:
    """The account that runs PostgreSQL's programs: ``user`` when started by root, else None
    (the caller)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise ServerError(
            f"postgres_user: no user {user!r} on this machine (PostgreSQL refuses to run as root; "
            "name an unprivileged user or start as one)"
        ) from None


def _as_owner(owner: pwd.struct_passwd | None, command: list) -> list[str]:
    command = [str(c) for c in command]
    return command if owner is None else ["runuser", "-u", owner.pw_name, "--", *command]


def _run(command: list[str], what: str, env: dict | None = None) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ServerError(f"{what} failed: {detail[-1] if detail else f'exit status {proc.returncode}'}")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie nobody reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _running_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pid.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host


def tracking_uri(host: str, port: int) -> str:
    """The address clients use: the bound host, or this machine's name when bound to all."""
    name = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"http://{f'[{name}]' if ':' in name else name}:{port}"


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ServerError(f"port: cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None


def _check_reachable(owner: pwd.struct_passwd, folder: Path) -> None:
    """``owner`` can enter ``folder``'s nearest existing ancestor (PostgreSQL runs as it)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if subprocess.run(_as_owner(owner, ["test", "-x", existing]), capture_output=True).returncode != 0:
        raise ServerError(
            f"dir: user {owner.pw_name} cannot enter {existing}, and PostgreSQL runs as that user "
            "(choose a folder it can reach, or start as a non-root user)"
        )


def _backend_uri(layout: Layout) -> str:
    from urllib.parse import quote

    password = layout.password.read_text().strip()
    return f"postgresql+psycopg://{ROLE}:{password}@/{DATABASE}?host={quote(str(layout.pgdata), safe='')}"


def _init_cluster(layout: Layout, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
    """A new cluster in ``pgdata``: role ``mlflow`` with a fresh password, no TCP, the
    socket in ``pgdata`` itself."""
    layout.pgdata.mkdir(mode=0o700, parents=True)
    layout.password.touch(mode=0o600)
    layout.password.write_text(secrets.token_hex(24) + "\n")
    pwfile = layout.root / ".initdb_password"
    shutil.copyfile(layout.password, pwfile)
    if owner is not None:
        os.chown(layout.pgdata, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    try:
        initdb = [bin_dir / "initdb", "-D", layout.pgdata, "-U", ROLE, "--auth=scram-sha-256"]
        _run(_as_owner(owner, [*initdb, f"--pwfile={pwfile}", "--no-locale", "-E", "UTF8"]), "initdb")
    except ServerError:
        shutil.rmtree(layout.pgdata)
        layout.password.unlink()
        raise
    finally:
        pwfile.unlink()
    socket_dir = str(layout.pgdata).replace("'", "''")
    with open(layout.pgdata / "postgresql.conf", "a") as conf:
        conf.write(f"\n# python -m src.runs.server\nlisten_addresses = ''\nunix_socket_directories = '{socket_dir}'\n")


def start(
    folder: str | Path,
    host: str,
    port: int,
    workers: int,
    genai_jobs: bool,
    allowed_hosts: str | None,
    postgres_bin: str | None,
    postgres_user: str,
    start_timeout: float,
    stop_timeout: float,
) -> str:
    """Start PostgreSQL and mlflow server for ``folder`` (creating the cluster the first
    time) and return the tracking URI once the server answers."""
    layout = Layout(Path(folder).resolve())
    running = _running_pid(layout)
    if running is not None:
        raise ServerError(f"dir: a server for {layout.root} already runs (pid {running}); stop it first")
    if importlib.util.find_spec("psycopg") is None:
        raise ServerError("psycopg is not installed (install the server extra: pip install 'backprop-harness[server]')")
    bin_dir = find_postgres_bin(postgres_bin)
    owner = _owner(postgres_user)
    if len(str(layout.socket)) > MAX_SOCKET_PATH:
        raise ServerError(f"dir: {layout.root} is too long for PostgreSQL's socket path; choose a shorter folder")
    _check_port_free(host, port)
    if owner is not None:
        _check_reachable(owner, layout.root)
    if not layout.root.exists():
        layout.root.mkdir(parents=True, mode=0o711)
    fresh = not (layout.pgdata / "PG_VERSION").exists()
    if fresh:
        _init_cluster(layout, bin_dir, owner)
    pg_ctl = [bin_dir / "pg_ctl", "-D", layout.pgdata, "-w", "-t", str(int(start_timeout))]
    if subprocess.run(_as_owner(owner, [*pg_ctl, "status"]), capture_output=True).returncode != 0:
        _run(_as_owner(owner, [*pg_ctl, "-l", layout.pgdata / "server.log", "start"]), "pg_ctl start")
    password = layout.password.read_text().strip()
    if fresh:
        createdb = [bin_dir / "createdb", "-h", layout.pgdata, "-U", ROLE, DATABASE]
        _run([str(c) for c in createdb], "createdb", env={**os.environ, "PGPASSWORD": password})

    layout.artifacts.mkdir(mode=0o700, exist_ok=True)
    command = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers", str(workers)]
    command += ["--artifacts-destination", str(layout.artifacts)]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    # The backend URI carries the password: through the environment, not the command line.
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": _backend_uri(layout)}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = str(genai_jobs).lower()
    with open(layout.log, "ab") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    layout.pid.write_text(f"{server.pid}\n")
    health = f"http://{_probe_host(host)}:{port}/health"
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            stop(layout.root, postgres_bin, postgres_user, stop_timeout)
            raise ServerError(f"mlflow server exited with status {server.returncode}; see {layout.log}")
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.status == 200:
                    return tracking_uri(host, port)
        except OSError:
            time.sleep(0.5)
    stop(layout.root, postgres_bin, postgres_user, stop_timeout)
    raise ServerError(f"mlflow server did not answer within {start_timeout:g} s; see {layout.log}")


def stop(folder: str | Path, postgres_bin: str | None, postgres_user: str, stop_timeout: float) -> list[str]:
    """Stop the mlflow server (SIGTERM to its process group, SIGKILL after
    ``stop_timeout`` seconds) and then PostgreSQL; returns what was stopped."""
    layout = Layout(Path(folder).resolve())
    stopped = []
    pid = _running_pid(layout)
    if pid is not None:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + stop_timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped.append(f"mlflow server (pid {pid})")
    layout.pid.unlink(missing_ok=True)
    if (layout.pgdata / "postmaster.pid").exists():
        bin_dir = find_postgres_bin(postgres_bin)
        command = [bin_dir / "pg_ctl", "-D", layout.pgdata, "-m", "fast", "-w", "stop"]
        _run(_as_owner(_owner(postgres_user), command), "pg_ctl stop")
        stopped.append(f"PostgreSQL ({layout.pgdata})")
    return stopped


def main(argv: list[str] | None = None) -> None:
    defaults = yaml.safe_load((CONF_DIR / "server.yaml").read_text())
    parser = argparse.ArgumentParser(prog="python -m src.runs.server", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop"):
        command = commands.add_parser(name)
        command.add_argument("--dir", required=True, help="the folder that holds the store")
        command.add_argument("--postgres-bin", help="folder with initdb and pg_ctl")
        command.add_argument("--postgres-user", help="owner of the cluster when started by root")
        command.add_argument("--stop-timeout", type=float)
        if name == "start":
            command.add_argument("--host")
            command.add_argument("--port", type=int)
            command.add_argument("--workers", type=int)
            command.add_argument("--genai-jobs", action=argparse.BooleanOptionalAction)
            command.add_argument("--allowed-hosts", help="mlflow server --allowed-hosts")
            command.add_argument("--start-timeout", type=float)
        command.set_defaults(**{k: v for k, v in defaults.items() if k in {a.dest for a in command._actions}})
    args = vars(parser.parse_args(argv))
    command, folder = args.pop("command"), args.pop("dir")
    try:
        if command == "start":
            uri = start(folder, **args)
            print(f"mlflow server on PostgreSQL in {Path(folder).resolve()}; artifacts in its artifacts/ folder")
            if _probe_host(args["host"]) not in ("127.0.0.1", "::1", "localhost"):
                print(f"warning: anyone who reaches {uri} can read and change the store (no authentication)")
            print(f"export MLFLOW_TRACKING_URI={uri}")
        else:
            stopped = stop(folder, **args)
            print(f"stopped {' and '.join(stopped)}" if stopped else f"nothing was running in {folder}")
    except ServerError as err:
        sys.exit(f"error: server: {err}")


if __name__ == "__main__":
    main()
