"""What can be checked of docker/ without a Docker daemon or an image registry (none on this machine).

- docker/compose.yaml parses; its services, volumes, health checks and dependencies fit together;
- every command and health check of a service on the project image exists in the image's environment,
  found through the image's own PATH with its folders mapped to this checkout (/opt/venv is the venv of
  requirements.lock, /opt/coalchain/<x> is what the Dockerfile copies there);
- every variable jobs.platform.settings.Settings reads (its fields and env prefix, read at test time) is passed to
  each service that runs project code, is listed in docker/.env.example, and the values compose resolves
  validate as Settings; no secret has a value in the repo;
- the Dockerfile installs exactly requirements.lock (one `pip install --no-deps -r` of the copied lock,
  no other pip install) and bakes in the JARs the session builder needs;
- the init scripts and the health-check helper do what the services rely on (run against stubs here).
"""
from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import socket
import stat
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
VENV = REPO / ".venv"

# A name that looks like a credential: compose must require it (no default) and .env.example leaves it empty.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|SALT|FERNET|TOKEN|ACCESS_KEY")
# Compose interpolation: $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $NAME.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


# ---- Parsing helpers ------------------------------------------------------------------------------------
@dataclass
class Reference:
    name: str
    op: str | None  # None, "-", ":-", "?", ":?"
    arg: str


def references(text: str) -> list[Reference]:
    found = []
    for m in INTERPOLATION.finditer(text):
        if m["escaped"]:
            continue
        found.append(Reference(m["name"] or m["bare"], m["op"], m["arg"] or ""))
    return found


class MissingVariable(KeyError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(m: re.Match) -> str:
        if m["escaped"]:
            return "$"
        name, op, arg = m["name"] or m["bare"], m["op"], m["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if unset_or_empty else value
        if op in ("?", ":?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return INTERPOLATION.sub(replace, text)


def strings_in(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings_in(key) + strings_in(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return []


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: not NAME=value: {line!r}"
        assert name not in values, f"{path.name}: {name} listed twice"
        values[name] = value
    return values


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append((current + stripped).strip())
        current = ""
    args, stages = {}, []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append(Instruction(keyword, rest.strip()))
    return args, stages


def stage_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            env[name] = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m[1], "$" + m[1]), value)
    return env


def shell_segments(command: str) -> list[list[str]]:
    """The simple commands of a RUN line (split at &&, ||, ;, |), each as words."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    segments, words = [], []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            segments.append(words)
            words = []
        else:
            words.append(token)
    segments.append(words)
    return [s for s in segments if s]


def is_pip_install(words: list[str]) -> bool:
    for i, word in enumerate(words):
        if Path(word).name in ("pip", "pip3", "pip3.11") or (word == "-m" and i + 1 < len(words)
                                                              and words[i + 1] == "pip"):
            return "install" in words[i + 1:]
    return False


# ---- Fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(DOCKER / ".env.example")


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKER / "Dockerfile")


@pytest.fixture(scope="module")
def runtime(dockerfile) -> Stage:
    return dockerfile[1][-1]


@pytest.fixture(scope="module")
def image_env(runtime) -> dict[str, str]:
    return stage_env(runtime)


@pytest.fixture(scope="module")
def image_files(runtime) -> dict[str, Path]:
    """Image path -> the file or folder of this checkout it holds (the venv, and the final stage's COPYs)."""
    mapping = {"/opt/venv": VENV.resolve()}
    for args in runtime.all("COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from=") for w in words):
            continue
        *sources, dest = [w for w in words if not w.startswith("--")]
        for source in sources:
            target = dest.rstrip("/") + "/" + Path(source).name if dest.endswith("/") else dest
            mapping[target] = REPO / source
    return mapping


def to_local(image_path: str, image_files: dict[str, Path]) -> Path | None:
    for prefix in sorted(image_files, key=len, reverse=True):
        if image_path == prefix or image_path.startswith(prefix + "/"):
            return image_files[prefix] / image_path[len(prefix):].lstrip("/")
    return None


@pytest.fixture(scope="module")
def apt_packages(runtime) -> set[str]:
    packages = set()
    for args in runtime.all("RUN"):
        for words in shell_segments(args):
            if "apt-get" in words and "install" in words:
                packages |= {w for w in words[words.index("install") + 1:] if not w.startswith("-")}
    return packages


def project_image_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items()
            if s.get("build", {}).get("dockerfile") == "docker/Dockerfile"}


def argv_of(service: dict) -> list[str]:
    entrypoint = service.get("entrypoint") or []
    command = service.get("command") or []
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else entrypoint
    command = shlex.split(command) if isinstance(command, str) else command
    return [*entrypoint, *command]


def healthcheck_argv(service: dict) -> list[str] | None:
    check = service.get("healthcheck")
    if not check:
        return None
    test = check["test"]
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    assert test[0] == "CMD", test
    return test[1:]


def runs_project_code(argv: list[str]) -> bool:
    """Airflow's scheduler (runs the tasks), dag-processor (imports the DAG files) and triggerer, a Spark
    worker (its executors run the project's Python), or a project module."""
    if argv[:1] == ["airflow"]:
        return argv[1:2] in (["scheduler"], ["dag-processor"], ["triggerer"])
    if argv[:1] == ["spark-class"]:
        return argv[1:2] == ["org.apache.spark.deploy.worker.Worker"]
    return argv[:1] == ["python"] and argv[1:2] == ["-m"]


def settings_env_names() -> dict[str, list[str]]:
    """Field -> the environment variables it is read from (any one of them sets it), from the class itself."""
    from pydantic import AliasChoices, AliasPath
    from pydantic_settings import BaseSettings

    from jobs.platform.settings import Settings

    def names_of(cls: type[BaseSettings], outer: str = "") -> dict[str, list[str]]:
        prefix = cls.model_config.get("env_prefix", "")
        found: dict[str, list[str]] = {}
        for name, info in cls.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
                found.update(names_of(annotation, outer + name + "."))
                continue
            alias = info.validation_alias or info.alias
            if alias is None:
                choices = [prefix + name]
            elif isinstance(alias, str):
                choices = [alias]
            elif isinstance(alias, AliasChoices):
                choices = [c if isinstance(c, str) else str(c.path[0]) for c in alias.choices]
            elif isinstance(alias, AliasPath):
                choices = [str(alias.path[0])]
            else:
                raise AssertionError(f"unknown alias kind on {name}: {alias!r}")
            found[outer + name] = [c.upper() for c in choices]
        return found

    return names_of(Settings)


# ---- The compose file -----------------------------------------------------------------------------------
def test_compose_has_the_stack(compose):
    services = compose["services"]
    for name in ("postgres", "object-store", "object-store-init", "airflow-init", "airflow-apiserver",
                 "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "spark-master"):
        assert name in services, f"compose.yaml has no {name} service"
    commands = {name: argv_of(s) for name, s in project_image_services(compose).items()}
    workers = [n for n, argv in commands.items() if argv[1:2] == ["org.apache.spark.deploy.worker.Worker"]]
    assert len(workers) == 2, f"two Spark workers expected, found {workers}"
    for worker in workers:
        assert "spark://spark-master:7077" in commands[worker], f"{worker} does not join spark-master:7077"
    airflow_env = services["airflow-scheduler"]["environment"]
    assert airflow_env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert "@postgres:5432/" in airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert commands["airflow-init"][-1].endswith("airflow-init.sh")
    assert "airflow db migrate" in (DOCKER / "airflow-init.sh").read_text()


def test_every_airflow_component_shares_one_configuration(compose):
    """Tokens signed by the scheduler are checked by the api-server: the keys and the database must agree."""
    shared = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY",
              "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
              "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__EXECUTOR")
    airflow = {n: s["environment"] for n, s in compose["services"].items() if n.startswith("airflow-")}
    assert len(airflow) == 5
    for key in shared:
        values = {name: env.get(key) for name, env in airflow.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), f"{key} differs: {values}"
    url = airflow["airflow-scheduler"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url.startswith("http://airflow-apiserver:8080/")


def test_volumes_healthchecks_and_dependencies_fit(compose):
    services, declared = compose["services"], set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DOCKER / source).resolve().exists(), f"{name} mounts {source}, which does not exist"
            else:
                used.add(source)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        # a long-running service (restarted when it stops) says when it is healthy
        if "restart" in service:
            assert healthcheck_argv(service), f"{name} has no health check"
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition["condition"] == "service_healthy":
                assert healthcheck_argv(services[target]), f"{name} waits for {target}, which has no check"
    assert used == declared, f"named volumes used {sorted(used)} but declared {sorted(declared)}"


# ---- Commands exist in the image ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def airflow_commands() -> dict[str, set[str]]:
    from airflow.cli import cli_config

    return {c.name: {s.name for s in getattr(c, "subcommands", ())} for c in cli_config.core_commands}


def check_executable(argv, image_env, image_files, apt_packages, airflow_commands, where: str) -> None:
    program = argv[0]
    base_shells = {"bash", "sh", "/bin/bash", "/bin/sh", "/usr/bin/bash"}  # Debian's, in the python image
    debian_executables = {"/usr/bin/tini": "tini", "tini": "tini", "java": "openjdk-17-jre-headless"}
    if program in base_shells:
        found = True
    elif program in debian_executables:
        found = debian_executables[program] in apt_packages
    else:
        candidates = [program] if program.startswith("/") else [
            f"{folder}/{program}" for folder in image_env["PATH"].split(":")]
        local = [to_local(c, image_files) for c in candidates]
        found = any(p is not None and p.is_file() and os.access(p, os.X_OK) for p in local)
    assert found, f"{where}: {program} is not in the image"

    name = Path(program).name
    if name in ("bash", "sh") and len(argv) > 1:
        script = to_local(argv[1], image_files)
        assert script is not None and script.is_file(), f"{where}: {argv[1]} is not copied into the image"
        assert subprocess.run([name, "-n", str(script)]).returncode == 0, f"{where}: {script} has syntax errors"
    elif name == "airflow":
        assert argv[1] in airflow_commands, f"{where}: no `airflow {argv[1]}`"
        if airflow_commands[argv[1]]:
            assert argv[2] in airflow_commands[argv[1]], f"{where}: no `airflow {argv[1]} {argv[2]}`"
    elif name == "python" and argv[1:2] == ["-m"]:
        module = argv[2]
        top = module.split(".")[0]
        assert to_local(f"/opt/coalchain/{top}", image_files) == REPO / top, f"{where}: {top} is not copied"
        assert (REPO / Path(*module.split("."))).with_suffix(".py").is_file(), f"{where}: no module {module}"
    elif name == "python":
        script = to_local(argv[1], image_files)
        assert script is not None and script.is_file(), f"{where}: {argv[1]} is not copied into the image"
    elif name == "spark-class":
        spark_jars = to_local(image_env["SPARK_HOME"], image_files) / "jars"
        class_file = argv[1].replace(".", "/") + ".class"
        assert any(class_file in zipfile.ZipFile(jar).namelist() for jar in spark_jars.glob("spark-core_*.jar")), \
            f"{where}: {argv[1]} is not in the image's Spark"


def test_every_command_and_health_check_exists_in_the_image(
        compose, runtime, image_env, image_files, apt_packages, airflow_commands):
    checked = 0
    for name, service in project_image_services(compose).items():
        argv = argv_of(service)
        assert argv, f"{name} has no command"
        check_executable(argv, image_env, image_files, apt_packages, airflow_commands, f"{name} command")
        check = healthcheck_argv(service)
        if check:
            check_executable(check, image_env, image_files, apt_packages, airflow_commands, f"{name} health check")
        checked += 1
    entrypoint = json.loads(runtime.all("ENTRYPOINT")[-1])
    check_executable(entrypoint, image_env, image_files, apt_packages, airflow_commands, "image ENTRYPOINT")
    assert checked >= 9


def test_spark_home_is_the_locked_pyspark(image_env, image_files):
    spark_home = to_local(image_env["SPARK_HOME"], image_files)
    assert (spark_home / "bin" / "spark-class").is_file()
    assert image_env["SPARK_HOME"] + "/bin" in image_env["PATH"].split(":")
    # the image's Python minor version is the one the lock was made for (this venv's)
    assert f"python{sys.version_info.major}.{sys.version_info.minor}" in image_env["SPARK_HOME"]


# ---- Variables ------------------------------------------------------------------------------------------
def test_settings_variables_reach_every_service_running_project_code(compose):
    fields = settings_env_names()
    assert "lake_root" in fields and fields["lake_root"] == ["COALCHAIN_LAKE_ROOT"]
    project_services = {n: s for n, s in project_image_services(compose).items() if runs_project_code(argv_of(s))}
    assert {"airflow-scheduler", "airflow-dag-processor", "spark-worker-1", "spark-worker-2"} <= set(project_services)
    for service_name, service in project_services.items():
        env = service.get("environment", {})
        for field_name, names in fields.items():
            passed = [n for n in names if n in env]
            assert passed, f"{service_name} gets none of {names} (Settings.{field_name})"
            # the value comes from the deployment's .env under the same name
            value = env[passed[0]]
            assert value is None or any(r.name == passed[0] for r in references(str(value))), \
                f"{service_name}: {passed[0]} is not taken from the variable of the same name"


def test_the_dags_read_no_variable_but_through_the_settings_object():
    """The DAG files take every setting from the settings object, so the variables above are all they need."""
    for path in sorted((REPO / "dags").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"os\.environ|os\.getenv|getenv\(", text), f"{path.name} reads the environment itself"
        assert "Asia/Shanghai" not in text, f"{path.name} writes the source time zone instead of the setting"


def passthrough_names(compose) -> set[str]:
    """Environment entries without a value: compose takes them from the shell or docker/.env as they are."""
    return {name for node in [compose.get("x-project-env", {})] + [s.get("environment", {}) for s in
                                                                   compose["services"].values()]
            for name, value in node.items() if value is None}


def compose_references(compose) -> list[Reference]:
    refs = [r for text in strings_in(compose) for r in references(text)]
    return refs + [Reference(name, None, "") for name in sorted(passthrough_names(compose))]


def test_env_example_lists_every_variable_and_no_secret(compose, env_example):
    refs = compose_references(compose)
    referenced = {r.name for r in refs}
    assert set(env_example) == referenced, (
        f"in compose.yaml only: {sorted(referenced - set(env_example))}; "
        f"in .env.example only: {sorted(set(env_example) - referenced)}")
    for names in settings_env_names().values():
        assert any(n in env_example for n in names), f".env.example lists none of {names}"
    required = {r.name for r in refs if r.op in ("?", ":?")}
    for ref in refs:
        if SECRET_NAME.search(ref.name):
            # required, or optional with an empty default (an unset channel): never a secret value
            assert ref.op in ("?", ":?") or (ref.op in ("-", ":-") and ref.arg == ""), \
                f"compose.yaml gives the secret {ref.name} a default"
        elif ref.op in ("-", ":-"):
            assert env_example[ref.name] == ref.arg, \
                f"{ref.name}: .env.example says {env_example[ref.name]!r}, compose.yaml defaults to {ref.arg!r}"
    for name, value in env_example.items():
        if name in required or SECRET_NAME.search(name):
            assert value == "", f".env.example holds a value for the secret {name}"
    for name in passthrough_names(compose):
        # passed as it is: an empty value would reach the code as "" (a folder ".", a JSON error)
        assert env_example[name] != "", f".env.example gives {name}, passed without a default, no value"


def resolved_env(service: dict, env_file: dict[str, str]) -> dict[str, str]:
    resolved = {}
    for key, value in service["environment"].items():
        if value is None:  # passed through from the .env file, or unset
            if key in env_file:
                resolved[key] = env_file[key]
        else:
            resolved[key] = interpolate(str(value), env_file)
    return resolved


def test_resolved_values_are_valid_settings(compose, env_example, monkeypatch):
    """What compose passes (the .env.example values, secrets filled in) validates as Settings: an empty
    string for a number or a misspelt profile would fail here rather than in the first task."""
    from jobs.platform.settings import Settings

    filled = {name: value or f"test-{name.lower()}" for name, value in env_example.items()}
    env = resolved_env(compose["services"]["airflow-scheduler"], filled)
    for name in list(os.environ):
        if name.startswith(("COALCHAIN_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.spark_master == "spark://spark-master:7077"
    assert str(settings.jar_dir) == "/opt/coalchain/jars"
    assert settings.company_key_salt == "test-coalchain_company_key_salt"


def test_compose_refuses_to_start_without_the_secrets(compose, env_example):
    service = compose["services"]["airflow-scheduler"]
    with pytest.raises(MissingVariable, match="AWS_SECRET_ACCESS_KEY"):
        resolved_env(service, {**{n: v or "x" for n, v in env_example.items()}, "AWS_SECRET_ACCESS_KEY": ""})


# ---- The image installs exactly the lock ----------------------------------------------------------------
def test_dockerfile_installs_exactly_the_lock(dockerfile, runtime):
    _, stages = dockerfile
    lock_dest = None
    for args in runtime.all("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if words[0] == "requirements.lock":
            lock_dest = words[-1]
    assert lock_dest, "the Dockerfile does not copy requirements.lock"
    installs = [words for stage in stages for args in stage.all("RUN") for words in shell_segments(args)
                if is_pip_install(words)]
    assert len(installs) == 1, f"one pip install expected, found {installs}"
    words = installs[0]
    after = words[words.index("install") + 1:]
    assert "--no-deps" in after
    assert ["-r", lock_dest] == [w for w in after if not w.startswith("--")], \
        f"the pip install installs more than -r {lock_dest}: {after}"
    for unwanted in ("--upgrade", "-U", "--pre", "-e", "--editable", "--index-url", "--extra-index-url"):
        assert unwanted not in after


def test_the_lock_is_fully_pinned():
    lines = [line.strip() for line in (REPO / "requirements.lock").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) > 100
    unpinned = [line for line in lines if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+", line)]
    assert not unpinned, f"not pinned to one version: {unpinned}"


def test_image_is_python_311_java_17_non_root(dockerfile, runtime, image_env, apt_packages):
    args, _ = dockerfile
    base = runtime.base
    base = args.get(base.strip("${}"), base) if base.startswith("$") else base
    assert re.fullmatch(r"python:3\.11[.\d]*-slim(-\w+)?", base), base
    assert "openjdk-17-jre-headless" in apt_packages
    assert image_env["JAVA_HOME"].startswith("/usr/lib/jvm/java-17")
    users = runtime.all("USER")
    assert users and users[-1] not in ("root", "0", "0:0"), f"the image runs as {users[-1:] or 'root'}"


def test_build_context_holds_what_the_image_copies(dockerfile):
    """docker/Dockerfile.dockerignore excludes everything, then lets in what the COPYs need; a COPY of a
    path it does not let in fails the build."""
    allowed = [line[1:].rstrip("/") for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    first = [line for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")][0]
    assert first == "*", "the ignore file should start by excluding everything"
    for stage in dockerfile[1]:
        for args in stage.all("COPY"):
            words = shlex.split(args)
            if any(w.startswith("--from=") for w in words):
                continue
            for source in [w for w in words if not w.startswith("--")][:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert any(source == a or source.startswith(a + "/") for a in allowed), \
                    f"COPY {source}: excluded from the build context by Dockerfile.dockerignore"


def test_the_image_gets_the_packages_data_files(dockerfile):
    """Files beside the code that the code loads (the report's Jinja templates and style sheet, reference
    CSVs) are copied with their package: a COPY of a folder holding them, and no ignore pattern drops them."""
    import fnmatch

    lines = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    excluded = [line for line in lines[1:] if not line.startswith("!")]
    copied = [w for stage in dockerfile[1] for args in stage.all("COPY") if "--from=" not in args
              for w in [w for w in shlex.split(args) if not w.startswith("--")][:-1]]
    tracked = subprocess.run(["git", "ls-files", "jobs", "schemas", "models", "dags"], cwd=REPO, text=True,
                             capture_output=True, check=True).stdout.split()
    data_files = [f for f in tracked if not f.endswith(".py")]
    assert "jobs/delivery/report/templates/report.html.j2" in data_files
    for name in data_files:
        assert any(name.startswith(c + "/") for c in copied), f"{name}: no COPY takes it into the image"
        assert any(name.startswith(a + "/") for a in allowed), f"{name}: not in the build context"
        dropped = [p for p in excluded if fnmatch.fnmatch(name, p.replace("**/", "*"))]
        assert not dropped, f"{name}: left out of the build context by {dropped}"


def test_the_lock_has_the_metadata_database_driver(compose):
    url = compose["services"]["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    driver = url.split("://")[0].split("+")[1]
    distributions = {"psycopg2": ("psycopg2", "psycopg2-binary"), "psycopg": ("psycopg", "psycopg-binary")}[driver]
    locked = {line.split("==")[0].lower() for line in (REPO / "requirements.lock").read_text().splitlines()}
    assert locked & set(distributions), f"requirements.lock pins none of {distributions}"


# ---- JARs -----------------------------------------------------------------------------------------------
def jar_list() -> list[tuple[str, str, str, str]]:
    entries = []
    for line in (DOCKER / "jars.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            coordinate, sha256 = line.split()
            group, artifact, version = coordinate.split(":")
            assert re.fullmatch(r"[0-9a-f]{64}", sha256), f"{coordinate}: not a SHA-256"
            entries.append((group, artifact, version, sha256))
    return entries


def test_jars_match_the_locked_versions():
    from jobs.platform.settings import DELTA_VERSION

    versions = {artifact: version for _, artifact, version, _ in jar_list()}
    assert versions["delta-spark_2.13"] == DELTA_VERSION
    assert versions["delta-storage"] == DELTA_VERSION
    bundled = sorted((VENV / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
                      / "pyspark" / "jars").glob("hadoop-client-api-*.jar"))
    assert len(bundled) == 1
    assert versions["hadoop-aws"] == bundled[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    # hadoop-aws 3.4.1 is built against AWS SDK v2 2.24.6 (aws-java-sdk-v2.version, hadoop-project 3.4.1)
    assert versions["bundle"] == "2.24.6"


def test_jar_folder_is_the_one_the_session_reads(runtime, image_env, compose, env_example, tmp_path, monkeypatch):
    """Every ``*_jars(settings)`` of jobs.platform.session (the JARs a session puts on ``spark.jars``) finds its files
    among those the jars stage writes, with the stack's settings."""
    import jobs.platform.session
    from jobs.platform.settings import Settings

    copies = [shlex.split(a) for a in runtime.all("COPY") if a.startswith("--from=jars")]
    assert copies and copies[0][-1] == image_env["COALCHAIN_JAR_DIR"]
    default = [r.arg for r in references(compose["x-project-env"]["COALCHAIN_JAR_DIR"])][0]
    assert default == image_env["COALCHAIN_JAR_DIR"]
    for _, artifact, version, _ in jar_list():  # the file names the Dockerfile's jars stage writes
        (tmp_path / f"{artifact}-{version}.jar").write_bytes(b"")
    filled = {name: value or f"test-{name.lower()}" for name, value in env_example.items()}
    for name in list(os.environ):
        if name.startswith(("COALCHAIN_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in resolved_env(compose["services"]["airflow-scheduler"], filled).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COALCHAIN_JAR_DIR", str(tmp_path))
    monkeypatch.setenv("COALCHAIN_S3_JAR_DIR", str(tmp_path))  # the image keeps both sets in one folder
    settings = Settings(_env_file=None)
    finders = {name: f for name, f in vars(jobs.platform.session).items() if name.endswith("_jars") and callable(f)}
    assert "delta_jars" in finders
    for name, finder in finders.items():
        jars = finder(settings)  # raises FileNotFoundError on a missing JAR
        assert all(str(tmp_path) in str(jar) for jar in jars), f"{name} reads JARs outside COALCHAIN_JAR_DIR"
    assert len(jobs.platform.session.delta_jars(settings)) == 2


def test_jars_stage_downloads_and_checks_each_jar(dockerfile, tmp_path):
    """The jars stage's RUN, run here with curl against a Maven layout on disk: it writes
    <artifactId>-<version>.jar and stops on a checksum that does not match."""
    import hashlib

    stage = next(s for s in dockerfile[1] if s.name == "jars")
    args = dict(a.partition("=")[::2] for a in stage.all("ARG"))
    script = next(run for run in stage.all("RUN") if "sha256sum -c" in run)
    copy_source = [shlex.split(a) for a in parse_dockerfile(DOCKER / "Dockerfile")[1][-1].all("COPY")
                   if a.startswith("--from=jars")][0][1]
    assert copy_source == args["JAR_OUT"]  # the runtime stage copies the folder this stage writes

    repo = tmp_path / "maven"
    jar = repo / "org" / "example" / "demo-lib" / "1.2.3" / "demo-lib-1.2.3.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"not really a jar")
    good = hashlib.sha256(b"not really a jar").hexdigest()
    listing = tmp_path / "jars.txt"

    def run(sha256: str) -> subprocess.CompletedProcess:
        listing.write_text(f"# comment\n\norg.example:demo-lib:1.2.3 {sha256}\n")
        env = {"PATH": "/usr/bin:/bin", "MAVEN_REPO": f"file://{repo}", "JAR_LIST": str(listing),
               "JAR_OUT": str(tmp_path / "out")}
        return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)

    done = run(good)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "demo-lib-1.2.3.jar").read_bytes() == b"not really a jar"
    assert run("0" * 64).returncode != 0


# ---- Scripts the services run ---------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_healthcheck_reports_healthy_only_on_2xx():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"

        def run(*urls):
            return subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), *urls, "--timeout-s", "2"],
                                  capture_output=True, text=True).returncode

        assert run(f"{base}/ok") == 0
        assert run(f"{base}/down") == 1
        assert run(f"{base}/ok", f"{base}/down") == 1
    finally:
        server.shutdown()
        server.server_close()
    assert run(f"{base}/ok") == 1  # nothing listens any more


def test_healthcheck_of_a_tcp_service_needs_a_listener():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    run = lambda url: subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), url, "--timeout-s", "2"],  # noqa: E731
                                     capture_output=True, text=True)
    assert run(f"tcp://127.0.0.1:{port}").returncode == 0
    listener.close()
    refused = run(f"tcp://127.0.0.1:{port}")
    assert refused.returncode == 1 and f"unhealthy: tcp://127.0.0.1:{port}" in refused.stderr


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_airflow_init_migrates_then_writes_the_login(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "airflow", f'echo "$@" >> {tmp_path}/airflow.calls\n')
    stub(bin_dir, "python", f'exec {sys.executable} "$@"\n')
    passwords = tmp_path / "auth" / "passwords.json"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "AIRFLOW_ADMIN_USERNAME": "planner",
           "AIRFLOW_ADMIN_PASSWORD": "s3cret-for-test", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)}
    done = subprocess.run(["bash", str(DOCKER / "airflow-init.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "airflow.calls").read_text() == "db migrate\n"
    assert json.loads(passwords.read_text()) == {"planner": "s3cret-for-test"}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600

    refused = subprocess.run(["bash", str(DOCKER / "airflow-init.sh")], env={**env, "AIRFLOW_ADMIN_PASSWORD": ""},
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "AIRFLOW_ADMIN_PASSWORD" in refused.stderr


def test_object_store_init_creates_the_buckets_of_the_settings(tmp_path, compose, env_example):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # the stub records each call and keeps the policy document it is given
    stub(bin_dir, "mc", f'echo "$@" >> {tmp_path}/mc.calls\n'
                        f'[ "$1 $2 $3" = "admin policy create" ] && cp "$6" {tmp_path}/policy.json\nexit 0\n')
    filled = {name: value or f"test-{name.lower()}" for name, value in env_example.items()}
    env = resolved_env(compose["services"]["object-store-init"], filled)
    env |= {"PATH": f"{bin_dir}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["sh", str(DOCKER / "object-store-init.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "mc.calls").read_text().splitlines()
    # s3://coalchain-lake/lake and s3://coalchain-landing/landing -> buckets coalchain-lake, coalchain-landing
    assert "mb --ignore-existing store/coalchain-lake" in calls
    assert "mb --ignore-existing store/coalchain-landing" in calls
    assert "admin user add store test-aws_access_key_id test-aws_secret_access_key" in calls
    assert "admin policy attach store coalchain --user test-aws_access_key_id" in calls
    policy = json.loads((tmp_path / "policy.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {"arn:aws:s3:::coalchain-lake", "arn:aws:s3:::coalchain-landing",
                         "arn:aws:s3:::coalchain-lake/*", "arn:aws:s3:::coalchain-landing/*"}

    local = subprocess.run(["sh", str(DOCKER / "object-store-init.sh")],
                           env={**env, "COALCHAIN_LAKE_ROOT": "/data/lake"}, capture_output=True, text=True)
    assert local.returncode != 0 and "/data/lake is not an s3://bucket/prefix location" in local.stderr
