"""The README's configuration table against the settings object (`jobs/platform/settings.py`).

Every environment variable the settings read (the ``COALCHAIN_`` ones and the unprefixed ``AWS_`` aliases)
must have a row, every row must name a real setting, and the default a row shows must be the code's
default. Pure Python: no Spark.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import AliasChoices, SecretStr

from jobs.platform.settings import REPO_ROOT, Settings

README = REPO_ROOT / "README.md"
TABLE_HEADER = "| variable | default | meaning |"
UNSET = object()  # a documented "unset" (the code's default is None)


# --- what the code declares ---------------------------------------------------------------------------

def env_names(field_name: str) -> list[str]:
    """The variables a field is read from: its aliases if it has any, else prefix + name."""
    field = Settings.model_fields[field_name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{Settings.model_config['env_prefix']}{field_name}".upper()]


def code_default(field_name: str):
    return Settings.model_fields[field_name].get_default(call_default_factory=True)


def variables() -> dict[str, str]:
    """Every environment variable -> the field it sets."""
    return {env: name for name in Settings.model_fields for env in env_names(name)}


# --- what the README shows ----------------------------------------------------------------------------

def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def readme_rows(text: str) -> list[tuple[list[str], str]]:
    """(variables, default cell) of each row of the configuration table."""
    lines = text.splitlines()
    section = lines.index("## Configuration")
    header = next(i for i in range(section, len(lines)) if lines[i].strip() == TABLE_HEADER)
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        variable_cell, default_cell, _meaning = split_row(line)
        rows.append((re.findall(r"`([^`]+)`", variable_cell), default_cell))
    return rows


def documented_default(cell: str, code_value):
    """The value a default cell states, read the way the code's default is typed.

    "unset ..." is None. Otherwise the first `code span` is the value; paths may be written relative to
    the repository root (`.lake/`, `../shared/data/real`) or the home folder (`~/.cache/...`), since the
    code computes them from where the repository and the home folder are."""
    if cell.lower().startswith("unset"):
        return UNSET
    match = re.search(r"`([^`]*)`", cell)
    if match is None:
        raise ValueError(f"default cell {cell!r} has neither 'unset' nor a `value`")
    text = match.group(1)
    if isinstance(code_value, bool):
        return {"true": True, "false": False}.get(text.lower(), text)
    if isinstance(code_value, (int, float)):
        return float(text.replace("_", ""))
    if isinstance(code_value, Path):
        path = Path(text).expanduser()
        return (path if path.is_absolute() else REPO_ROOT / path).resolve()
    if isinstance(code_value, (dict, list)):
        return json.loads(text)
    return text


def normalised_code_default(value):
    if value is None:
        return UNSET
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Path):
        return value.resolve()
    return list(value) if isinstance(value, tuple) else value


def suggested_row(env: str) -> str:
    """The README row for a variable: every variable of its setting, the default in the table's form, the
    setting's description."""
    name = variables()[env]
    value = code_default(name)
    if value is None:
        shown = "unset"
    elif isinstance(value, bool):
        shown = f"`{str(value).lower()}`"
    elif isinstance(value, Path):
        home = Path.home()
        if value.is_relative_to(REPO_ROOT):
            shown = f"`{value.relative_to(REPO_ROOT).as_posix()}/`"
        elif value.is_relative_to(REPO_ROOT.parent):
            shown = f"`../{value.relative_to(REPO_ROOT.parent).as_posix()}`"
        elif value.is_relative_to(home):
            shown = f"`~/{value.relative_to(home).as_posix()}`"
        else:
            shown = f"`{value.as_posix()}`"
    elif isinstance(value, dict):
        shown = f"`{json.dumps(value)}`"
    else:
        shown = f"`{value}`"
    description = Settings.model_fields[name].description or "(say what it sets)"
    return f"| {', '.join(f'`{each}`' for each in env_names(name))} | {shown} | {description} |"


# --- the checks -----------------------------------------------------------------------------------------

def test_every_variable_has_a_row():
    documented = {env for envs, _ in readme_rows(README.read_text()) for env in envs}
    missing = sorted(set(variables()) - documented)
    advice = []
    for env in missing:
        listed = [other for other in env_names(variables()[env]) if other in documented]
        where = f"replace the row of `{listed[0]}` with" if listed else "add the row"
        advice.append(f"{env}: {where}\n{suggested_row(env)}")
    assert not missing, "README.md, section Configuration:\n" + "\n".join(dict.fromkeys(advice))


def test_every_row_is_a_setting():
    unknown = [env for envs, _ in readme_rows(README.read_text()) for env in envs if env not in variables()]
    assert not unknown, (f"README.md, section Configuration: {unknown} are not read by "
                         "jobs/platform/settings.py; remove their rows or add the settings")


def test_every_documented_default_is_the_code_default():
    known = variables()
    wrong = []
    for envs, cell in readme_rows(README.read_text()):
        for env in envs:
            if env not in known:
                continue  # reported by test_every_row_is_a_setting
            value = code_default(known[env])
            try:
                documented = documented_default(cell, value)
            except ValueError as error:
                documented = error
            if documented != normalised_code_default(value):
                wrong.append(f"{env}: README says {cell!r}; replace the row with\n{suggested_row(env)}")
    assert not wrong, "README.md, section Configuration:\n" + "\n".join(wrong)


# --- the checks themselves can fail ---------------------------------------------------------------------

ROWS = """## Configuration

| variable | default | meaning |
|---|---|---|
| `COALCHAIN_LAKE_ROOT` | `.lake/` | root |
| `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | unset | credentials |

after the table
"""


def test_rows_are_read_with_every_variable_of_a_row():
    assert readme_rows(ROWS) == [(["COALCHAIN_LAKE_ROOT"], "`.lake/`"),
                                 (["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "unset")]


@pytest.mark.parametrize("cell, code_value, expected", [
    ("unset (AWS S3)", None, UNSET),
    ("`false`", False, False),
    ("`1048576` (1 MiB)", 1 << 20, 1048576.0),      # 1 << 20 = 1048576
    ("`120`", 120.0, 120.0),
    ("`2` (`make run`: 0)", 2, 2.0),                # the first code span is the default
    ("`.lake/`", REPO_ROOT / ".lake", (REPO_ROOT / ".lake").resolve()),
    ("`../shared/data/real`", REPO_ROOT.parent / "shared" / "data" / "real",
     (REPO_ROOT.parent / "shared" / "data" / "real").resolve()),
    ("`~/.cache/x`", Path.home() / ".cache" / "x", (Path.home() / ".cache" / "x").resolve()),
    ('`{"a": "1"}`', {}, {"a": "1"}),
])
def test_documented_default_is_read_as_typed(cell, code_value, expected):
    assert documented_default(cell, code_value) == expected


@pytest.mark.parametrize("cell, code_value", [
    ("`true`", False),            # bool differs
    ("`7`", 8),                   # number differs
    ("`.lake2/`", REPO_ROOT / ".lake"),
    ("`{}`", {"a": "1"}),
    ("`UTC`", "Asia/Shanghai"),
    ("unset", "us-east-1"),       # documented unset, code has a value
])
def test_a_wrong_default_does_not_match(cell, code_value):
    assert documented_default(cell, code_value) != normalised_code_default(code_value)


def test_suggested_rows_round_trip():
    """The row the failure message proposes states the code's default (so pasting it makes the test pass)."""
    for env, name in variables().items():
        row = suggested_row(env)
        variable_cell, default_cell, _ = split_row(row)
        assert env in re.findall(r"`([^`]+)`", variable_cell)
        value = code_default(name)
        assert documented_default(default_cell, value) == normalised_code_default(value), row
