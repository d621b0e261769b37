"""Docs, comments and data files speak about the project as it is: they cite the project's own domain
notes (docs/domain.md), not a file outside the repository, and no issue tracker entries or work history."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".csv", ".sh", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".txt", ".html", ".j2"}
SKIPPED = ("vendor/", "data_samples/landing/", "tests/test_repo_text.py")
FORBIDDEN = {
    "a domain notes file outside the repository (cite docs/domain.md)": re.compile(r"DOMAIN\.md|\bDOMAIN §"),
    "a reference to an issue": re.compile(r"\bthe issue(?!\s+time)(?:'s)?\b|\bissues? #?\d+\b", re.IGNORECASE),
    "work history (say what is true now)": re.compile(r"\bthis session\b|\bthis revision\b", re.IGNORECASE),
}


def repo_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
        paths = [REPO / line for line in listed.splitlines()]
    except (OSError, subprocess.CalledProcessError):      # not a git checkout: walk the tree
        paths = [p for p in REPO.rglob("*") if ".git" not in p.parts and ".venv" not in p.parts]
    rel = [(p, p.relative_to(REPO).as_posix()) for p in paths]
    return [p for p, r in rel if p.is_file() and (p.suffix in TEXT_SUFFIXES or p.name == "Makefile")
            and not r.startswith(SKIPPED)]


def offences(text: str) -> list[tuple[int, str, str]]:
    return [(number, what, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            for what, pattern in FORBIDDEN.items() if pattern.search(line)]


def test_no_outside_notes_issue_references_or_work_history():
    found = [f"{path.relative_to(REPO)}:{number}: {what}: {line[:120]}"
             for path in repo_text_files()
             for number, what, line in offences(path.read_text(encoding="utf-8", errors="replace"))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("line, caught", [
    ("# factor from DOMAIN.md section 5", True),
    ('"""DOMAIN §7: about 1.4 kWh/km"""', True),
    ("0 = distance > 500 km as the issue states", True),
    ("# the issue's crash: a cross join", True),
    ("Benchmark of the pipeline (issue 7)", True),
    ("were done in this session", True),
    ("complete days at or before the issue time t - H", False),   # a forecasting term
    ("factors as in docs/domain.md section 5", False),
])
def test_the_check_catches_what_it_names(line, caught):
    assert bool(offences(line)) is caught
