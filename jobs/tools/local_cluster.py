"""A Spark standalone cluster and an S3 endpoint on this host, for tests and the benchmark.

``LocalSparkCluster`` starts one master and N workers with ``spark-class`` (the launcher that ships inside
the ``pyspark`` package), bound to 127.0.0.1 on free ports, with an environment that does not contain the
repository: the workers know only the Python interpreter they are told to run, so the project's code
reaches them the way it would reach a real cluster (the session ships it). Every process is stopped by
its own PID on exit. ``python -m jobs.tools.local_cluster`` runs one in the foreground for a manual try.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def clean_environment() -> dict[str, str]:
    """The environment of a cluster process: no PYTHONPATH, no project variables, no credentials."""
    keep = ("PATH", "HOME", "JAVA_HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
    return env


@dataclass
class LocalSparkCluster:
    workers: int = 2
    cores_per_worker: int = 1
    memory_per_worker: str = "2g"
    work_dir: Path | None = None
    master_port: int = field(default_factory=free_port)
    master_ui_port: int = field(default_factory=free_port)
    _processes: list[subprocess.Popen] = field(default_factory=list, init=False, repr=False)
    _own_work_dir: bool = field(default=False, init=False, repr=False)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        assert self.work_dir is not None
        log = open(self.work_dir / log_name, "wb")
        process = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], env=clean_environment(),
                                   cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        self._processes.append(process)
        return process

    def start(self, timeout_s: float = 90.0) -> "LocalSparkCluster":
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="coalchain-cluster-"))
            self._own_work_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(self.master_port), "--webui-port", str(self.master_ui_port)], "master.log")
        for index in range(self.workers):
            worker_dir = self.work_dir / f"worker-{index}"
            worker_dir.mkdir(exist_ok=True)
            self._spawn(["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                         "--port", str(free_port()), "--webui-port", str(free_port()),
                         "--cores", str(self.cores_per_worker), "--memory", self.memory_per_worker,
                         "--work-dir", str(worker_dir), self.master_url], f"worker-{index}.log")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"a Spark cluster process exited with {process.returncode}; "
                                       f"logs in {self.work_dir}")
            if self.alive_workers() == self.workers:
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"{self.workers} Spark workers did not register within {timeout_s:.0f} s; "
                           f"logs in {self.work_dir}")

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.master_ui_port}/json/", timeout=2) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        try:
            return int(self.status().get("aliveworkers", 0))
        except OSError:
            return 0

    def stop(self) -> None:
        # workers first, so the master does not log them as lost; each by its own PID (and its group)
        for process in reversed(self._processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self._processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._processes.clear()
        if self._own_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "LocalSparkCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


S3_SERVER_VENV = Path.home() / ".cache" / "coalchain" / "s3server-venv"


@dataclass
class LocalS3Server:
    """moto's standalone S3 server (a real S3 HTTP endpoint that honours conditional writes) on
    127.0.0.1, installed by ``scripts/bootstrap.sh cluster``; stopped by its PID."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    access_key_id: str = "coalchain-test"
    secret_access_key: str = "coalchain-test-secret"
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables that point the project at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_REGION": "us-east-1",
                "COALCHAIN_S3_ALLOW_HTTP": "true", "COALCHAIN_S3_PATH_STYLE": "true"}

    def settings(self, **values):
        """A settings object pointing at this server (the variables a deployment sets), plus ``values``."""
        from jobs.platform.settings import Settings

        env = self.environment()
        return Settings(_env_file=None, aws_endpoint_url=env["AWS_ENDPOINT_URL"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        aws_region=env["AWS_REGION"], s3_allow_http=True, s3_path_style=True, **values)

    def start(self, timeout_s: float = 30.0) -> "LocalS3Server":
        server = S3_SERVER_VENV / "bin" / "moto_server"
        if not server.is_file():
            raise FileNotFoundError(f"{server} not found: run `scripts/bootstrap.sh cluster` once")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {k: v for k, v in clean_environment().items() if not k.startswith("SPARK")}
        self._process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if log is not subprocess.DEVNULL:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"moto_server did not listen on 127.0.0.1:{self.port} within {timeout_s:.0f} s")

    def create_bucket(self, bucket: str) -> None:
        from pyarrow import fs

        s3 = fs.S3FileSystem(access_key=self.access_key_id, secret_key=self.secret_access_key,
                             region="us-east-1", endpoint_override=f"127.0.0.1:{self.port}", scheme="http",
                             allow_bucket_creation=True)
        s3.create_dir(bucket)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        self._process = None

    def __enter__(self) -> "LocalS3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    with LocalSparkCluster() as cluster:
        print(f"Spark master {cluster.master_url} (UI http://127.0.0.1:{cluster.master_ui_port}); Ctrl-C stops it",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
