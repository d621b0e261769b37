"""The production topology of docker/compose.yaml, natively on this host, on loopback only.

    scripts/stack.sh up | down | status        # make stack-up / stack-down / stack-status
    scripts/stack.sh airflow <args>            # the airflow CLI against the running stack
    scripts/stack.sh run <command> <args>      # any command with the stack's environment (lake, Spark, S3)
    scripts/stack.sh env                       # the same environment as `export` lines (holds secrets)
    scripts/stack.sh rotate-credentials        # new database, UI, API and Fernet secrets; Airflow restarted
    scripts/stack.sh load-sample               # the committed sample into a landing zone in the stack's bucket
    scripts/stack.sh destroy                   # down, then delete the stack's data, metadata and secrets

Components, started in this order and stopped in the reverse one, each a process of its own whose PID is
recorded under ``<stack dir>/run/``:

* ``postgres``: Airflow's metadata database, from Debian's PostgreSQL packages (``initdb`` once, then the
  ``postgres`` server on 127.0.0.1 and a port chosen at random on the first start; no Unix socket). Run as
  the invoking user, or as the ``postgres`` system user when that is root (PostgreSQL refuses root);
* ``object-store``: moto's S3 server (``scripts/bootstrap.sh stack`` installs it) with the buckets
  ``coalchain-lake`` and ``coalchain-landing`` created at start;
* ``spark-master``, ``spark-worker-1``, ``spark-worker-2``: a Spark standalone cluster from the pinned
  PySpark (as jobs.tools.local_cluster starts one);
* ``spark-connect``: a Spark Connect server (``python -m jobs.platform.session connect-server``), one Spark
  application on that cluster with the Delta and S3 JARs; the tasks are its clients
  (``COALCHAIN_SPARK_REMOTE``), so no task starts a JVM of its own;
* ``airflow-api-server``, ``airflow-scheduler`` (LocalExecutor), ``airflow-dag-processor``,
  ``airflow-triggerer``: Airflow 3 on that database, after ``airflow db migrate``; the UI logs in with
  Airflow's simple auth manager (user ``admin``), as docker/compose.yaml does.

Where things live: ``COALCHAIN_STACK_DIR`` (default ``<repo>/.stack``, ignored by git) holds the PID files,
logs, the PostgreSQL data folder, the Airflow home, the lake (``lake/``) and the delivery folder. The
secrets (database password, UI password, Fernet key, JWT and API secrets, object-store keys, company-key
salt) are generated on the first start into ``COALCHAIN_STACK_ENV`` (default
``~/.config/coalchain/stack-<id>.env``, mode 600), never into the repository. Any ``COALCHAIN_*`` variable
set when the stack starts is handed to the Airflow components and the Connect server (e.g.
``COALCHAIN_SPARK_REMOTE=`` (empty) and ``COALCHAIN_SPARK_MASTER=local[2]`` to run each task's Spark
in-process instead of through the server).

Every process the stack starts carries ``COALCHAIN_STACK_ID=<id>`` in its environment, so ``down`` finds
and stops by PID also what a component started (task processes, Spark drivers and executors), and then
checks that no process of the stack is left.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import glob
import hashlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from jobs.tools.local_cluster import S3_SERVER_VENV, clean_environment, free_port, spark_home

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = VENV_BIN / "airflow"
ADMIN_USER = "admin"
DB_USER = DB_NAME = "airflow"
BUCKETS = ("coalchain-lake", "coalchain-landing")
SPARK_WORKERS = 2
POSTGRES_SYSTEM_USER = "postgres"
DAG_REPARSE_INTERVAL_S = 120   # the dag-processor re-parses an unchanged DAG file at most this often

DATABASE = ("postgres",)
OBJECT_STORE = ("object-store",)
SPARK = ("spark-master",) + tuple(f"spark-worker-{i}" for i in range(1, SPARK_WORKERS + 1))
SPARK_CONNECT = ("spark-connect",)
AIRFLOW_COMPONENTS = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
COMPONENTS = DATABASE + OBJECT_STORE + SPARK + SPARK_CONNECT + AIRFLOW_COMPONENTS
SECRET_KEYS = ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
               "AIRFLOW_API_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "COALCHAIN_COMPANY_KEY_SALT")


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


class StackError(RuntimeError):
    pass


# ---- where things are ---------------------------------------------------------------------------------
class Stack:
    def __init__(self, directory: Path | None = None, env_file: Path | None = None):
        self.dir = Path(directory or os.environ.get("COALCHAIN_STACK_DIR") or REPO / ".stack").resolve()
        self.id = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
        default_env = Path.home() / ".config" / "coalchain" / f"stack-{self.id}.env"
        self.env_file = Path(env_file or os.environ.get("COALCHAIN_STACK_ENV") or default_env)
        self.passwords_file = self.env_file.with_suffix(".passwords.json")
        self.run_dir, self.log_dir = self.dir / "run", self.dir / "logs"
        self.state_file = self.dir / "stack.json"
        self.airflow_home = self.dir / "airflow"

    # -- persistent, non-secret state (ports, the environment the components were started with) --
    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}

    def save_state(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o644)

    def ports(self) -> dict[str, int]:
        """The loopback ports of the stack, chosen at random on its first start and kept."""
        state = self.state()
        ports = state.get("ports", {})
        wanted = ["postgres", "object-store", "spark-master", "spark-master-ui", "spark-connect", "airflow-api-server"]
        wanted += [f"spark-worker-{i}{suffix}" for i in range(1, SPARK_WORKERS + 1) for suffix in ("", "-ui")]
        if any(name not in ports for name in wanted):
            taken = set(ports.values())
            for name in wanted:
                while name not in ports:
                    port = free_port()
                    if port not in taken:
                        ports[name] = port
                        taken.add(port)
            state["ports"] = ports
            self.save_state(state)
        return ports

    # -- secrets, outside the repository --
    def secrets(self) -> dict[str, str]:
        values = _read_env_file(self.env_file)
        missing = [k for k in SECRET_KEYS if not values.get(k)]
        if missing:
            values.update({k: v for k, v in new_secrets().items() if k in missing})
            self.save_secrets(values)
        return values

    def save_secrets(self, values: dict[str, str]) -> None:
        self.env_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        header = (f"# Secrets of the coalchain stack in {self.dir} (scripts/stack.sh); generated, never commit.\n"
                  "# Change them with `scripts/stack.sh rotate-credentials`, not by hand.\n")
        body = "".join(f"{k}={shlex.quote(values[k])}\n" for k in sorted(values))
        _write_atomic(self.env_file, header + body, 0o600)
        _write_atomic(self.passwords_file, json.dumps({ADMIN_USER: values["AIRFLOW_ADMIN_PASSWORD"]}) + "\n", 0o600)

    # -- PID files --
    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def recorded(self, name: str) -> dict | None:
        try:
            return json.loads(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> int | None:
        """The PID of the component if the process recorded for it is still that process, else None."""
        record = self.recorded(name)
        if record and _process_start(record["pid"]) == record["start"]:
            return record["pid"]
        return None

    @property
    def postgres_data(self) -> Path:
        return Path(self.state().get("postgres_data") or self.dir / "postgres" / "data")

    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports()['airflow-api-server']}"


def new_secrets() -> dict[str, str]:
    token = lambda: secrets.token_urlsafe(32)  # noqa: E731  URL-safe: the DB password goes into a URL
    return {
        "POSTGRES_PASSWORD": token(), "AIRFLOW_ADMIN_PASSWORD": token(),
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW_JWT_SECRET": token(), "AIRFLOW_API_SECRET_KEY": token(),
        "AWS_ACCESS_KEY_ID": "coalchain-" + secrets.token_hex(6), "AWS_SECRET_ACCESS_KEY": token(),
        "COALCHAIN_COMPANY_KEY_SALT": token(),
    }


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(partial, mode)
    os.replace(partial, path)


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                parsed = shlex.split(value)
                values[key.strip()] = parsed[0] if parsed else ""
    return values


# ---- processes ----------------------------------------------------------------------------------------
def _process_start(pid: int) -> int | None:
    """The start time (clock ticks after boot) of a live process, None if there is none (or a zombie):
    with the PID it names one process, even after the PID is reused."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def stack_processes(stack_id: str, roots: set[int] = frozenset()) -> list[int]:
    """Every live process started by the stack: they all carry COALCHAIN_STACK_ID=<id> in their
    environment (inherited by what they start), whatever process group or parent they now have, plus
    ``roots`` (the components' PIDs) and the descendants of all of them: a process that sets its title
    (the api-server, PostgreSQL's backends) may overwrite what /proc shows of its environment."""
    marker = f"COALCHAIN_STACK_ID={stack_id}".encode()
    mine = {os.getpid(), os.getppid()}
    found = [pid for pid in roots if _process_start(pid) is not None]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and _process_start(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return sorted((set(found) | descendants(set(found))) - mine)


def _spawn(stack: Stack, name: str, cmd: list[str], env: dict[str, str], **popen) -> int:
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    env = {**env, "COALCHAIN_STACK_ID": stack.id}
    with open(stack.log_dir / f"{name}.log", "ab") as out:
        out.write(f"\n==== {dt.datetime.now().isoformat(timespec='seconds')} {shlex.join(cmd)}\n".encode())
        out.flush()
        process = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, **popen)
    start = None
    for _ in range(50):
        start = _process_start(process.pid)
        if start is not None:
            break
        time.sleep(0.02)
    record = {"pid": process.pid, "start": start, "cmd": cmd}
    _write_atomic(stack.pid_file(name), json.dumps(record) + "\n", 0o644)
    return process.pid


def _wait(condition, timeout_s: float, what: str, stack: Stack, names: tuple[str, ...]):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name in names:
            if stack.alive(name) is None:
                raise StackError(f"{name} exited while waiting for {what}; log: {stack.log_dir / (name + '.log')}\n"
                                 + _tail(stack.log_dir / f"{name}.log"))
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise StackError(f"timed out after {timeout_s:.0f} s waiting for {what}; logs in {stack.log_dir}")


def _tail(path: Path, chars: int = 2500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else ""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_json(url: str, timeout: float = 2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return None


# ---- PostgreSQL ---------------------------------------------------------------------------------------
def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise StackError("PostgreSQL is not installed: run `scripts/bootstrap.sh stack` (apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_postgres_user() -> dict:
    """Popen arguments that drop root to the postgres system user (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": POSTGRES_SYSTEM_USER, "group": POSTGRES_SYSTEM_USER, "extra_groups": []}


def _prepare_postgres_data(stack: Stack) -> Path:
    data = stack.postgres_data
    if (data / "PG_VERSION").is_file():
        return data
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        os.chown(data, account.pw_uid, account.pw_gid)
        # the postgres user must reach the folder; a stack dir under a private home cannot be reached
        reachable = subprocess.run(["test", "-w", str(data)], **_as_postgres_user()).returncode == 0
        if not reachable:
            data.rmdir()
            data = Path(account.pw_dir) / "coalchain-stack" / stack.id / "data"
            data.mkdir(parents=True, exist_ok=True)
            for folder in (data.parent.parent, data.parent, data):
                os.chown(folder, account.pw_uid, account.pw_gid)
            state = stack.state()
            state["postgres_data"] = str(data)
            stack.save_state(state)
            log(f"{stack.dir} is not reachable by the postgres user; PostgreSQL data in {data}")
            if (data / "PG_VERSION").is_file():
                return data
    os.chmod(data, 0o700)
    password = stack.secrets()["POSTGRES_PASSWORD"]
    pwfile = data.parent / ".initdb-password"
    _write_atomic(pwfile, password + "\n", 0o600)
    try:
        if os.geteuid() == 0:
            import pwd

            account = pwd.getpwnam(POSTGRES_SYSTEM_USER)
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        log(f"initdb {data}")
        with open(stack.log_dir / "postgres-initdb.log", "ab") as out:
            done = subprocess.run([str(postgres_bin() / "initdb"), "-D", str(data), "-U", DB_USER,
                                   f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                                   "--encoding=UTF8", "--no-locale"],
                                  stdout=out, stderr=subprocess.STDOUT, cwd="/", **_as_postgres_user())
        if done.returncode != 0:
            raise StackError(f"initdb failed; log: {stack.log_dir / 'postgres-initdb.log'}")
    finally:
        pwfile.unlink(missing_ok=True)
    return data


def start_postgres(stack: Stack, env_base: dict[str, str]) -> None:
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    data = _prepare_postgres_data(stack)
    port = stack.ports()["postgres"]
    if _listening(port):
        raise StackError(f"port {port} of the stack's PostgreSQL is taken by another process")
    cmd = [str(postgres_bin() / "postgres"), "-D", str(data), "-p", str(port),
           "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"]
    env = {k: env_base[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in env_base}
    _spawn(stack, "postgres", cmd, env, cwd="/", **_as_postgres_user())
    _wait(lambda: _db_ready(stack), 60, "PostgreSQL to accept connections", stack, ("postgres",))
    _ensure_database(stack)


def _connect(stack: Stack, database: str = "postgres", password: str | None = None):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=stack.ports()["postgres"], user=DB_USER, dbname=database,
                            password=password or stack.secrets()["POSTGRES_PASSWORD"], connect_timeout=3)


def _db_ready(stack: Stack) -> bool:
    import psycopg2

    try:
        _connect(stack).close()
        return True
    except psycopg2.OperationalError as exc:
        if "password authentication failed" in str(exc):
            raise StackError(f"PostgreSQL refused the password of {stack.env_file}: {exc}") from exc
        return False


def _ensure_database(stack: Stack) -> None:
    connection = _connect(stack)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        connection.close()


# ---- object store -------------------------------------------------------------------------------------
def start_object_store(stack: Stack) -> None:
    server = S3_SERVER_VENV / "bin" / "moto_server"
    if not server.is_file():
        raise StackError(f"{server} not found: run `scripts/bootstrap.sh stack`")
    port = stack.ports()["object-store"]
    if _listening(port):
        raise StackError(f"port {port} of the stack's object store is taken by another process")
    env = {k: v for k, v in clean_environment().items() if not k.startswith("SPARK")}
    _spawn(stack, "object-store", [str(server), "-H", "127.0.0.1", "-p", str(port)], env, cwd=stack.dir)
    _wait(lambda: _listening(port), 30, "the object store to listen", stack, OBJECT_STORE)
    from pyarrow import fs

    keys = stack.secrets()
    s3 = fs.S3FileSystem(access_key=keys["AWS_ACCESS_KEY_ID"], secret_key=keys["AWS_SECRET_ACCESS_KEY"],
                         region="us-east-1", endpoint_override=f"127.0.0.1:{port}", scheme="http",
                         allow_bucket_creation=True)
    for bucket in BUCKETS:
        s3.create_dir(bucket)


# ---- Spark standalone cluster -------------------------------------------------------------------------
def start_spark(stack: Stack, names: list[str]) -> None:
    ports = stack.ports()
    env = clean_environment()
    work = stack.dir / "spark"
    spark_class = str(spark_home() / "bin" / "spark-class")
    master_url = f"spark://127.0.0.1:{ports['spark-master']}"
    if "spark-master" in names:
        _spawn(stack, "spark-master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                       "--port", str(ports["spark-master"]),
                                       "--webui-port", str(ports["spark-master-ui"])], env, cwd=stack.dir)
        _wait(lambda: _http_json(f"http://127.0.0.1:{ports['spark-master-ui']}/json/"), 60,
              "the Spark master", stack, ("spark-master",))
    cores, memory = os.environ.get("COALCHAIN_STACK_WORKER_CORES", "1"), os.environ.get("COALCHAIN_STACK_WORKER_MEMORY", "2g")
    for name in names:
        if name == "spark-master":
            continue
        (work / name).mkdir(parents=True, exist_ok=True)
        _spawn(stack, name, [spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                             "--port", str(ports[name]), "--webui-port", str(ports[f"{name}-ui"]),
                             "--cores", cores, "--memory", memory, "--work-dir", str(work / name), master_url],
               env, cwd=stack.dir)

    def all_workers():
        status = _http_json(f"http://127.0.0.1:{ports['spark-master-ui']}/json/")
        return status and int(status.get("aliveworkers", 0)) >= SPARK_WORKERS

    _wait(all_workers, 90, f"{SPARK_WORKERS} Spark workers to register", stack, SPARK)


# ---- Spark Connect server -----------------------------------------------------------------------------
def start_spark_connect(stack: Stack) -> None:
    """The Connect server the tasks use, with the project settings the tasks get (lake, master, S3)."""
    port = stack.ports()["spark-connect"]
    if _listening(port):
        raise StackError(f"port {port} of the stack's Spark Connect server is taken by another process")
    env = airflow_environment(stack)
    env.pop("COALCHAIN_SPARK_REMOTE", None)   # the server runs Spark itself
    _spawn(stack, "spark-connect", [str(VENV_BIN / "python"), "-m", "jobs.platform.session", "connect-server",
                                    "--host", "127.0.0.1", "--port", str(port)], env, cwd=REPO)
    _wait(lambda: _listening(port), 120, "the Spark Connect server to listen", stack, SPARK_CONNECT)


def connect_in_use(project_env: dict[str, str]) -> bool:
    """Whether the tasks of these settings are clients of the Connect server (not Spark drivers of their own)."""
    return bool(project_env.get("COALCHAIN_SPARK_REMOTE"))


# ---- Airflow ------------------------------------------------------------------------------------------
def project_environment(stack: Stack) -> dict[str, str]:
    """What the project code of the tasks reads: the stack's defaults, then any COALCHAIN_* variable of the
    caller (not the stack's own settings)."""
    ports = stack.ports()
    env = {
        "COALCHAIN_LAKE_ROOT": str(stack.dir / "lake"),
        "COALCHAIN_LANDING_ROOT": str(REPO / "data_samples" / "landing"),
        "COALCHAIN_DELIVERY_ROOT": str(stack.dir / "delivery"),
        "COALCHAIN_SPARK_MASTER": f"spark://127.0.0.1:{ports['spark-master']}",
        # the tasks are clients of the stack's Connect server (one application holding the cluster's cores)
        "COALCHAIN_SPARK_REMOTE": f"sc://127.0.0.1:{ports['spark-connect']}",
        "COALCHAIN_SPARK_CONF": json.dumps({"spark.executor.memory": "1g"}),
        "COALCHAIN_SPARK_DRIVER_MEMORY": "2g",
        "COALCHAIN_SPARK_PROFILE": "small",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['object-store']}",
        "AWS_REGION": "us-east-1",
        "COALCHAIN_S3_ALLOW_HTTP": "true",
        "COALCHAIN_S3_PATH_STYLE": "true",
    }
    env.update({k: v for k, v in os.environ.items()
                if k.startswith("COALCHAIN_") and not k.startswith("COALCHAIN_STACK") and k not in SECRET_KEYS})
    return env


def airflow_environment(stack: Stack, project_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every Airflow component and of `scripts/stack.sh airflow|run`."""
    keys, ports = stack.secrets(), stack.ports()
    project_env = project_env if project_env is not None else stack.state().get("project_env") or project_environment(stack)
    api = ports["airflow-api-server"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "COALCHAIN_", "AWS_", "PYTHONPATH"))}
    env.update(project_env)
    env.update({
        "PYTHONPATH": str(REPO),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "AWS_ACCESS_KEY_ID": keys["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": keys["AWS_SECRET_ACCESS_KEY"],
        "COALCHAIN_COMPANY_KEY_SALT": keys["COALCHAIN_COMPANY_KEY_SALT"],
        "COALCHAIN_STACK_DIR": str(stack.dir),
        "COALCHAIN_STACK_ENV": str(stack.env_file),
        "AIRFLOW_HOME": str(stack.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(stack.state().get("parallelism", 2)),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # each parse of the DAG folder costs a few CPU seconds; every 30 s (Airflow's default) that is a
        # sixth of a core on a small host, taken from the tasks. An unchanged file is re-parsed at most
        # every two minutes; a file changed since its last parse is not held back by the interval
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(DAG_REPARSE_INTERVAL_S),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": keys["AIRFLOW_FERNET_KEY"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(stack.passwords_file),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (f"postgresql+psycopg2://{DB_USER}:{keys['POSTGRES_PASSWORD']}"
                                                f"@127.0.0.1:{ports['postgres']}/{DB_NAME}"),
        # Airflow derives an asyncpg URL for its async engine; the lock has psycopg2 only. Empty = no async
        # engine (used only by the multi-team execution API and the API's wait-for-run endpoint).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "",
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__API__SECRET_KEY": keys["AIRFLOW_API_SECRET_KEY"],
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api}",
    })
    return env


AIRFLOW_COMMANDS = {
    "airflow-api-server": [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--workers", "1"],
    # the log servers of the scheduler and triggerer would listen on every interface: the api-server
    # reads the task logs from the shared log folder instead. The scheduler imports the tasks' modules
    # before it forks its LocalExecutor workers, so no task process imports them again
    "airflow-scheduler": [str(VENV_BIN / "python"), "-m", "jobs.platform.airflow_scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": [str(AIRFLOW), "dag-processor"],
    "airflow-triggerer": [str(AIRFLOW), "triggerer", "--skip-serve-logs"],
}


def start_airflow(stack: Stack, names: list[str], keep_settings: bool = False) -> None:
    running = [n for n in AIRFLOW_COMPONENTS if stack.alive(n)]
    state = stack.state()
    if not running and not (keep_settings and "project_env" in state):
        # a fresh start: take the caller's settings
        state["project_env"] = project_environment(stack)
        # tasks at once (LocalExecutor): a client of the Connect server is a Python process that mostly waits
        # on the server; a task with its own Spark driver holds COALCHAIN_SPARK_DRIVER_MEMORY and a core
        thin = connect_in_use(state["project_env"])
        state["parallelism"] = int(os.environ.get("COALCHAIN_STACK_PARALLELISM", "4" if thin else "2"))
        stack.save_state(state)
    env = airflow_environment(stack)
    stack.airflow_home.mkdir(parents=True, exist_ok=True)
    stack.secrets()  # writes the passwords file if it is missing
    if not running:   # upgrade the schema to the installed Airflow before any component uses it
        log("airflow db migrate")
        with open(stack.log_dir / "airflow-db-migrate.log", "ab") as out:
            done = subprocess.run([str(AIRFLOW), "db", "migrate"], env={**env, "COALCHAIN_STACK_ID": stack.id},
                                  cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise StackError(f"airflow db migrate failed; log: {stack.log_dir / 'airflow-db-migrate.log'}\n"
                             + _tail(stack.log_dir / "airflow-db-migrate.log"))
    api = stack.ports()["airflow-api-server"]
    if "airflow-api-server" in names and _listening(api):
        raise StackError(f"port {api} of the stack's api-server is taken by another process")
    for name in names:
        cmd = list(AIRFLOW_COMMANDS[name])
        if name == "airflow-api-server":
            cmd += ["--port", str(api)]
        _spawn(stack, name, cmd, env, cwd=REPO)
    _wait(lambda: airflow_healthy(stack), 240, "Airflow (api-server, scheduler, dag-processor, triggerer) "
          "to report healthy", stack, AIRFLOW_COMPONENTS)


def airflow_health(stack: Stack) -> dict | None:
    return _http_json(f"{stack.ui_url()}/api/v2/monitor/health")


def airflow_healthy(stack: Stack) -> bool:
    health = airflow_health(stack)
    return bool(health) and all(health.get(part, {}).get("status") == "healthy"
                                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


# ---- commands -----------------------------------------------------------------------------------------
def up(stack: Stack) -> int:
    stack.dir.mkdir(parents=True, exist_ok=True)
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    stack.secrets()
    stack.ports()
    missing = [name for name in COMPONENTS if stack.alive(name) is None]
    if not missing:
        log("every component is already running; nothing started")
        print_login(stack)
        return 0
    log(f"starting: {', '.join(missing)}")
    try:
        env_base = dict(os.environ)
        if "postgres" in missing:
            start_postgres(stack, env_base)
        if "object-store" in missing:
            start_object_store(stack)
        spark = [n for n in SPARK if n in missing]
        if spark:
            start_spark(stack, spark)
        airflow = [n for n in AIRFLOW_COMPONENTS if n in missing]
        if airflow and not [n for n in AIRFLOW_COMPONENTS if stack.alive(n)]:
            # a fresh start of Airflow takes the caller's settings; the Connect server serves them too
            state = stack.state()
            state["project_env"] = project_environment(stack)
            stack.save_state(state)
        if "spark-connect" in missing:
            start_spark_connect(stack)
        if airflow:
            start_airflow(stack, airflow)
    except StackError as exc:
        log(f"ERROR: {exc}")
        log("the components started so far keep running: `make stack-status`, `make stack-down`")
        return 1
    print_login(stack)
    return 0


def print_login(stack: Stack) -> None:
    ports = stack.ports()
    print(f"coalchain stack running ({stack.dir})")
    print(f"  Airflow UI:   {stack.ui_url()}  - log in as '{ADMIN_USER}' with the password AIRFLOW_ADMIN_PASSWORD of")
    print(f"                {stack.env_file}  (grep AIRFLOW_ADMIN_PASSWORD {stack.env_file})")
    print(f"  Spark master: spark://127.0.0.1:{ports['spark-master']}  (UI http://127.0.0.1:{ports['spark-master-ui']})")
    print(f"  Spark Connect: sc://127.0.0.1:{ports['spark-connect']}  (the tasks' Spark; COALCHAIN_SPARK_REMOTE)")
    print(f"  Object store: http://127.0.0.1:{ports['object-store']}  (buckets {', '.join(BUCKETS)})")
    print(f"  PostgreSQL:   127.0.0.1:{ports['postgres']}  database {DB_NAME}, user {DB_USER}")
    print(f"  Lake:         {stack.state().get('project_env', {}).get('COALCHAIN_LAKE_ROOT', stack.dir / 'lake')}")
    print("  CLI:          scripts/stack.sh airflow dags list   |   make stack-status   |   make stack-down")


def status(stack: Stack) -> int:
    ports = stack.state().get("ports", {})
    health = airflow_health(stack) if ports else None
    spark = _http_json(f"http://127.0.0.1:{ports['spark-master-ui']}/json/") if ports else None
    print(f"coalchain stack in {stack.dir}")
    print(f"{'component':<24}{'state':<10}{'pid':>8}  address / detail")
    running = 0
    for name in COMPONENTS:
        pid = stack.alive(name)
        state = "running" if pid else ("dead" if stack.recorded(name) else "stopped")
        running += bool(pid)
        detail = ""
        if name == "postgres":
            detail = f"127.0.0.1:{ports.get('postgres', '-')}"
        elif name == "object-store":
            detail = f"http://127.0.0.1:{ports.get('object-store', '-')}"
        elif name == "spark-master":
            detail = f"spark://127.0.0.1:{ports.get('spark-master', '-')}"
            if pid and spark:
                detail += f" ({spark.get('aliveworkers', 0)} workers alive)"
        elif name == "spark-connect":
            detail = f"sc://127.0.0.1:{ports.get('spark-connect', '-')}"
            if not connect_in_use(stack.state().get("project_env", {})):
                detail += " (not used: the tasks run Spark in-process)"
        elif name.startswith("spark-worker"):
            detail = f"UI http://127.0.0.1:{ports.get(name + '-ui', '-')}"
        elif name.startswith("airflow"):
            part = {"airflow-api-server": None, "airflow-scheduler": "scheduler",
                    "airflow-dag-processor": "dag_processor", "airflow-triggerer": "triggerer"}[name]
            if part is None:
                detail = f"{stack.ui_url()}" if ports else ""
                if pid and health:
                    detail += f" (metadatabase {health.get('metadatabase', {}).get('status')})"
            elif pid and health:
                detail = f"health: {health.get(part, {}).get('status')}"
        print(f"{name:<24}{state:<10}{pid or '-':>8}  {detail}")
    components = {stack.alive(n) for n in COMPONENTS} - {None}
    left = [p for p in stack_processes(stack.id, components) if p not in components]
    print(f"{running}/{len(COMPONENTS)} components running; {len(left)} other process(es) of the stack "
          f"(task processes, Spark drivers and executors)")
    return 0


def descendants(roots: set[int]) -> set[int]:
    """The PIDs of every process below ``roots`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, queue = set(), list(roots)
    while queue:
        for child in children.get(queue.pop(), []):
            if child not in found:
                found.add(child)
                queue.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_components(stack: Stack, names: tuple[str, ...], timeout_s: float = 60) -> list[int]:
    """Stop the named components, in the order given, each by its recorded PID (postgres: fast
    shutdown), then whatever they started; returns the PIDs that were signalled."""
    signalled = []
    for name in names:
        pid = stack.alive(name)
        if pid is None:
            stack.pid_file(name).unlink(missing_ok=True)
            continue
        tree = {pid} | descendants({pid})
        log(f"stopping {name} (pid {pid}{f', and {len(tree) - 1} process(es) it started' if len(tree) > 1 else ''})")
        _signal(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _process_start(pid) is not None:
            time.sleep(0.2)
        for child in sorted(tree):
            if _process_start(child) is not None:
                _signal(child, signal.SIGTERM)
        time.sleep(0.5)
        for child in sorted(tree):
            if _process_start(child) is not None:
                log(f"  pid {child} did not stop on SIGTERM: SIGKILL")
                _signal(child, signal.SIGKILL)
        signalled += sorted(tree)
        stack.pid_file(name).unlink(missing_ok=True)
    return signalled


def down(stack: Stack) -> int:
    stop_components(stack, tuple(reversed(COMPONENTS)))
    # what a component started and that outlived it (a task process in its own session, an executor)
    deadline = time.monotonic() + 30
    left = stack_processes(stack.id)
    while left and time.monotonic() < deadline:
        for pid in left:
            _signal(pid, signal.SIGTERM if time.monotonic() < deadline - 15 else signal.SIGKILL)
        time.sleep(1)
        left = stack_processes(stack.id)
    if left:
        log(f"ERROR: processes of the stack still alive: {left}")
        return 1
    print(f"coalchain stack stopped ({stack.dir}): no process of it is left")
    return 0


def rotate_credentials(stack: Stack) -> int:
    """New PostgreSQL password, UI password, JWT and API secrets and Fernet key (values encrypted with the
    old key are re-encrypted). Airflow is restarted on the new values; the company-key salt is kept
    (it names the delivery folders) and so are the object store's keys (moto accepts any)."""
    if stack.alive("postgres") is None:
        log("ERROR: the stack is not running (`make stack-up` first)")
        return 1
    old = stack.secrets()
    fresh = new_secrets()
    new = {**old, **{k: fresh[k] for k in ("POSTGRES_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET",
                                            "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY")}}
    airflow_running = [n for n in AIRFLOW_COMPONENTS if stack.alive(n)]
    stop_components(stack, tuple(reversed(AIRFLOW_COMPONENTS)))
    connection = _connect(stack, password=old["POSTGRES_PASSWORD"])
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER ROLE {DB_USER} PASSWORD %s", (new["POSTGRES_PASSWORD"],))
    finally:
        connection.close()
    # both Fernet keys while re-encrypting, then only the new one
    stack.save_secrets({**new, "AIRFLOW_FERNET_KEY": f"{new['AIRFLOW_FERNET_KEY']},{old['AIRFLOW_FERNET_KEY']}"})
    env = {**airflow_environment(stack), "COALCHAIN_STACK_ID": stack.id}
    with open(stack.log_dir / "rotate-credentials.log", "ab") as out:
        done = subprocess.run([str(AIRFLOW), "rotate-fernet-key"], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        log(f"ERROR: airflow rotate-fernet-key failed; log {stack.log_dir / 'rotate-credentials.log'}")
        return 1
    stack.save_secrets(new)
    log(f"new secrets written to {stack.env_file}")
    if airflow_running:
        try:
            start_airflow(stack, list(AIRFLOW_COMPONENTS), keep_settings=True)
        except StackError as exc:
            log(f"ERROR: {exc}")
            return 1
    print(f"credentials rotated; UI login: '{ADMIN_USER}' with AIRFLOW_ADMIN_PASSWORD of {stack.env_file}")
    return 0


def destroy(stack: Stack) -> int:
    import shutil

    if down(stack) != 0:
        return 1
    data = stack.postgres_data
    if not data.is_relative_to(stack.dir):
        shutil.rmtree(data.parent, ignore_errors=True)
    shutil.rmtree(stack.dir, ignore_errors=True)
    stack.env_file.unlink(missing_ok=True)
    stack.passwords_file.unlink(missing_ok=True)
    print(f"deleted {stack.dir} (lake, metadata database, logs) and {stack.env_file}")
    return 0


def load_sample(stack: Stack) -> int:
    """Copy the committed sample landing zone into the stack's landing zone when that is a bucket
    (``COALCHAIN_LANDING_ROOT=s3://...`` at stack-up); files already there with the same size are kept."""
    project_env = stack.state().get("project_env")
    if not project_env or stack.alive("object-store") is None:
        log("ERROR: the stack is not running (`make stack-up` first)")
        return 1
    os.environ.update({k: v for k, v in airflow_environment(stack).items() if k.startswith(("COALCHAIN_", "AWS_"))})
    from jobs.platform import storage
    from jobs.platform.settings import get_settings

    settings = get_settings()
    target = storage.parse_location(project_env["COALCHAIN_LANDING_ROOT"])
    if not storage.is_object_store(target):
        log(f"the landing zone {target} is a folder: nothing to load")
        return 0
    copied, kept = storage.upload_tree(settings, REPO / "data_samples" / "landing", target)
    print(f"sample landing zone loaded into {target.uri}: {copied} file(s) copied, {kept} already there")
    return 0


def run_command(stack: Stack, command: list[str]) -> int:
    if not command:
        log("ERROR: nothing to run")
        return 2
    env = airflow_environment(stack)
    if command[0] == "airflow":
        command = [str(AIRFLOW), *command[1:]]
    os.execvpe(command[0], command, env)


def print_env(stack: Stack) -> int:
    for key, value in sorted(airflow_environment(stack).items()):
        if key.startswith(("AIRFLOW", "COALCHAIN_", "AWS_", "PYTHONPATH", "SPARK_LOCAL_IP")):
            print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "env", "airflow", "run", "rotate-credentials",
                                            "load-sample", "destroy"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    stack = Stack()
    if args.command == "airflow":
        return run_command(stack, ["airflow", *args.args])
    if args.command == "run":
        return run_command(stack, args.args)
    return {"up": up, "down": down, "status": status, "env": print_env, "rotate-credentials": rotate_credentials,
            "load-sample": load_sample, "destroy": destroy}[args.command](stack)


if __name__ == "__main__":
    raise SystemExit(main())
