"""The executors' code archive: what it holds, and that its name follows its content."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from jobs.platform.session import code_archive, is_local_master
from jobs.platform.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def small_tree(root: Path) -> Path:
    for package in ("jobs", "schemas", "models"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "jobs" / "a.py").write_text("X = 1\n")
    (root / "schemas" / "reference").mkdir()
    (root / "schemas" / "reference" / "f.csv").write_text("name,value\nx,1\n")
    (root / "jobs" / "__pycache__").mkdir()
    (root / "jobs" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (root / "dags").mkdir()
    (root / "dags" / "d.py").write_text("")
    return root


def test_archive_holds_the_packages_and_their_data_only(tmp_path):
    tree = small_tree(tmp_path / "repo")
    settings = Settings(_env_file=None, code_cache_dir=tmp_path / "cache")
    archive = code_archive(settings, root=tree)
    names = sorted(zipfile.ZipFile(archive).namelist())
    assert names == ["jobs/__init__.py", "jobs/a.py", "models/__init__.py", "schemas/__init__.py",
                     "schemas/reference/f.csv"]


def test_archive_name_changes_with_the_code_and_only_with_it(tmp_path):
    tree = small_tree(tmp_path / "repo")
    settings = Settings(_env_file=None, code_cache_dir=tmp_path / "cache")
    first = code_archive(settings, root=tree)
    first_bytes = first.read_bytes()
    copy = shutil.copytree(tree, tmp_path / "copy")  # other mtimes, same content
    assert code_archive(settings, root=copy) == first
    assert first.read_bytes() == first_bytes
    (tree / "jobs" / "a.py").write_text("X = 2\n")
    changed = code_archive(settings, root=tree)
    assert changed != first and changed.is_file()
    assert zipfile.ZipFile(changed).read("jobs/a.py") == b"X = 2\n"


def test_the_real_archive_ships_the_settings_module(tmp_path):
    archive = code_archive(Settings(_env_file=None, code_cache_dir=tmp_path), root=REPO)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"jobs/platform/settings.py", "jobs/ingest/runner.py", "schemas/tables.py", "models/forecast.py"} <= names
    assert not any(n.startswith(("tests/", "dags/", ".venv/")) or "__pycache__" in n for n in names)


def test_which_masters_are_local():
    assert is_local_master("local") and is_local_master("local[*]") and is_local_master("local[2]")
    assert not is_local_master("spark://127.0.0.1:7077")
    assert not is_local_master("yarn") and not is_local_master("k8s://https://10.0.0.1:6443")


def test_the_report_templates_load_from_the_archive_alone(tmp_path):
    """An executor imports the project from the zip: the report module finds its Jinja templates in it."""
    import subprocess
    import sys

    archive = code_archive(Settings(_env_file=None, code_cache_dir=tmp_path / "cache"), root=REPO)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"jobs/delivery/report/templates/report.html.j2", "jobs/delivery/report/templates/blocks.html.j2",
            "jobs/delivery/report/templates/texts.html.j2", "jobs/delivery/report/templates/report.css"} <= names
    probe = ("import sys; from jobs.delivery.report import render; "
             "assert render.__file__.startswith(sys.argv[1]), render.__file__; "
             "print(render.pill('<b>', 'good')); print(render.TEMPLATES.get_template('report.css').render()[:6])")
    out = subprocess.run([sys.executable, "-c", probe, str(archive)], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(archive), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ['<span class="pill good">&lt;b&gt;</span>', ":root{"]


def _conf(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, word in enumerate(command) if word == "--conf")


def test_connect_server_command_carries_the_session_settings(tmp_path):
    from jobs.platform.session import connect_server_command

    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("delta-spark_2.13-4.0.1.jar", "delta-storage-4.0.1.jar"):
        (jars / name).write_bytes(b"")
    local = Settings(_env_file=None, jar_dir=jars, spark_master="local[2]", spark_shuffle_partitions=3,
                     spark_conf={"spark.executor.memory": "3g"}, code_cache_dir=tmp_path / "cache")
    command = connect_server_command("127.0.0.1", 15123, local)
    conf = _conf(command)
    assert command[command.index("--class") + 1] == "org.apache.spark.sql.connect.service.SparkConnectServer"
    assert command[command.index("--master") + 1] == "local[2]"
    assert command[command.index("--jars") + 1].split(",") == [str(jars / "delta-spark_2.13-4.0.1.jar"),
                                                               str(jars / "delta-storage-4.0.1.jar")]
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert conf["spark.connect.grpc.binding.port"] == "15123"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.shuffle.partitions"] == "3" and conf["spark.executor.memory"] == "3g"
    # no project code on the server's command line: each client session uploads its own archive
    assert "--py-files" not in command and not any("pyFiles" in word for word in command)
    # Python functions run in workers that exit with their task, unless the user's properties say otherwise
    assert conf["spark.python.use.daemon"] == "false"
    own = local.model_copy(update={"spark_conf": {"spark.python.use.daemon": "true"}})
    assert _conf(connect_server_command("127.0.0.1", 15123, own))["spark.python.use.daemon"] == "true"


def test_a_connect_url_is_checked_before_any_session_is_made():
    import socket

    import pytest

    from jobs.platform.session import SparkServerUnavailable, _require_reachable

    with pytest.raises(ValueError, match="is not a Spark Connect URL"):
        _require_reachable("http://127.0.0.1:15002")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    _require_reachable(f"sc://127.0.0.1:{port}")          # a listener: no error
    listener.close()
    with pytest.raises(SparkServerUnavailable, match=f"127.0.0.1:{port} .* does not accept connections"):
        _require_reachable(f"sc://127.0.0.1:{port}", timeout_s=2)


def test_a_process_that_pinned_its_code_ships_no_other_code(tmp_path, monkeypatch):
    """The stack's tasks are forked from a scheduler that imported the jobs at its start: after the code on disk
    changed, a task's own modules are the old ones, so it must not ship the new ones to its executors."""
    from jobs.platform import session

    monkeypatch.setattr(session, "_code_loaded", None)
    tree = small_tree(tmp_path / "repo")
    other = small_tree(tmp_path / "other")
    settings = Settings(_env_file=None, code_cache_dir=tmp_path / "cache")
    digest = session.pin_loaded_code(tree)
    assert code_archive(settings, root=tree).name == f"coalchain-{digest}.zip"
    (tree / "jobs" / "a.py").write_text("X = 2\n")
    (other / "jobs" / "a.py").write_text("X = 3\n")
    with pytest.raises(session.CodeChangedSinceStart, match=rf"code under {tree} changed after this process "
                       rf"imported it \(code {digest} imported, [0-9a-f]{{16}} on disk\)"):
        code_archive(settings, root=tree)
    assert code_archive(settings, root=other).is_file()    # only the pinned tree is compared
    (tree / "jobs" / "a.py").write_text("X = 1\n")          # back to the imported code
    assert code_archive(settings, root=tree).name == f"coalchain-{digest}.zip"
