"""The executors' code archive: what it holds, and that its name follows its content."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

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
