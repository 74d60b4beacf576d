"""Hostile SOP files give one located FILE:LINE: FIELD: reason line and exit 1, quickly and in little memory."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sopflow import cli, conditions, loader
from sopflow.catalog import validate
from sopflow.templates import render_email
from tests.sop_samples import MINIMAL

TESTS = Path(__file__).resolve().parents[1]
TEMPLATES = TESTS / "invalid_sops" / "templates"


def _only_error(
    path: Path, capsys: pytest.CaptureFixture[str], line: int, field: str, phrase: str, run: Path | None = None,
) -> None:
    """`sopflow validate run` (default: path) exits 1 in time, printing exactly one error: path's, as expected."""
    started = time.monotonic()
    assert cli.main(["validate", str(run or path)]) == 1
    assert time.monotonic() - started < 5, "validation took too long"
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:{line}: {field}: "), errors[0]
    assert phrase in errors[0].removeprefix(f"{path}:{line}: {field}: "), errors[0]


def _write(tmp_path: Path, text: str, name: str = "hostile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
)


def test_an_alias_bomb_is_refused_at_its_first_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _only_error(_write(tmp_path, BILLION_LAUGHS), capsys, 2, "(yaml)", "YAML aliases like *a are not allowed")


def test_any_alias_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = MINIMAL.replace("roles: {rep: [Alex Kim]}", "roles: {rep: &team [Alex Kim], lead: *team}")
    _only_error(_write(tmp_path, text), capsys, 6, "(yaml)", "YAML aliases like *team are not allowed")


@pytest.mark.parametrize("text", [
    "steps: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "".join(" " * depth + f"k{depth}:\n" for depth in range(60)),
], ids=["flow", "block"])
def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    _only_error(_write(tmp_path, text), capsys, 1 if text.startswith("steps") else 51, "(yaml)",
                "nested more than 50 levels deep")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(100 * 1024 * 1024)  # sparse: reading it whole would take 100 MB
    _only_error(path, capsys, 1, "(file)", f"over the {loader.MAX_FILE_BYTES:,}-byte limit")


def test_the_size_limit_is_inclusive(tmp_path: Path) -> None:
    padding = "#" * (loader.MAX_FILE_BYTES - len(MINIMAL) - 1) + "\n"
    at_limit = _write(tmp_path, MINIMAL + padding, "at_limit.yaml")
    over_limit = _write(tmp_path, MINIMAL + "#" + padding, "over_limit.yaml")
    assert at_limit.stat().st_size == loader.MAX_FILE_BYTES
    loaded, errors = validate([at_limit, over_limit])
    assert [item.path for item in loaded] == [at_limit]
    assert [(e.file, e.line, e.field) for e in errors] == [(over_limit, 1, "(file)")]


def test_bytes_that_are_not_utf8_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("Test Owner", "J\xfcrgen M\xfcller").encode("latin-1"))
    _only_error(path, capsys, 4, "(file)", "not UTF-8 text: byte 0xfc")


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "does-not-exist.yaml"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "folder.yaml").mkdir()
    return tmp_path / "folder.yaml"


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "pipe.yaml")  # opening it to read would wait for a writer forever
    return tmp_path / "pipe.yaml"


def _dangling_symlink(tmp_path: Path) -> Path:
    (tmp_path / "link.yaml").symlink_to(tmp_path / "gone.yaml")
    return tmp_path / "link.yaml"


def _read_error(tmp_path: Path) -> Path:
    # a regular file whose read fails, whoever reads it (root reads past a chmod 000): the reader's own memory
    (tmp_path / "unreadable.yaml").symlink_to("/proc/self/mem")
    return tmp_path / "unreadable.yaml"


@pytest.mark.parametrize(("make", "phrase"), [
    (_missing, "no such file"),
    (_directory, "is a directory, not an SOP file"),
    (_fifo, "not a regular file"),
    (_dangling_symlink, "a symlink to a missing file"),
    (_read_error, "cannot read the file: Input/output error"),
], ids=["missing", "directory", "fifo", "dangling_symlink", "read_error"])
def test_a_path_that_cannot_be_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], phrase: str,
) -> None:
    path = make(tmp_path)
    _only_error(path, capsys, 1, "(file)", phrase, run=tmp_path if make is _directory else path)


EMAIL_SOP = MINIMAL + "  - {id: welcome, kind: email, owner: rep, template: %s}\n"


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    """tmp_path/templates holding the test templates, plus evil.j2: a symlink to a template outside it."""
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "evil.j2").write_text((TEMPLATES / "follow_up.j2").read_text())
    (tmp_path / "templates" / "evil.j2").symlink_to(tmp_path / "outside" / "evil.j2")
    return tmp_path / "templates"


def test_a_template_inside_templates_is_accepted(template_dir: Path) -> None:
    loaded, errors = validate([_write(template_dir.parent, EMAIL_SOP % "follow_up")])
    assert errors == [] and len(loaded) == 1


@pytest.mark.parametrize(("template", "phrase"), [
    ("../../etc/passwd", "'../../etc/passwd' must be a template name"),
    ("/etc/passwd", "'/etc/passwd' must be a template name"),
    ("follow_up.j2", "without .j2"),
    ("evil", "template 'evil' resolves outside"),
], ids=["parent", "absolute", "suffix", "symlink"])
def test_a_template_outside_templates_is_refused(
    template_dir: Path, capsys: pytest.CaptureFixture[str], template: str, phrase: str,
) -> None:
    _only_error(_write(template_dir.parent, EMAIL_SOP % template), capsys, 11, "steps.1.template", phrase)


def test_rendering_refuses_a_template_outside_templates(template_dir: Path) -> None:
    (template_dir / "includes_evil.j2").write_text('{% block subject %}{% include "evil.j2" %}{% endblock %}')
    for name in ("evil", "../outside/evil", "includes_evil"):
        with pytest.raises(ValueError, match="resolves outside"):
            render_email(template_dir, name, {"lead": {"name": "Ann", "company": "Acme"}})


WHEN_SOP = MINIMAL + "    when: %s\n"
WHEN_SOP = WHEN_SOP.replace("  - {id: mark_working, kind: update_lead, owner: rep, status: working}\n",
                            "  - id: mark_working\n    kind: update_lead\n    owner: rep\n    status: working\n")


@pytest.mark.parametrize(("condition", "phrase"), [
    ("not " * 1200 + "lead.score > 1", "over the limit of 1000"),
    ("(" * 1000 + "lead.score > 1" + ")" * 1000, "over the limit of 1000"),
    ("not " * 40 + "lead.score > 1", "nested more than 32 levels deep"),
    ("-" * 900 + "1 < lead.score", "nested more than 32 levels deep"),
], ids=["not_1200", "parentheses_1000", "not_40", "minus_900"])
def test_a_deeply_nested_condition_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], condition: str, phrase: str,
) -> None:
    assert (conditions.MAX_CONDITION_LENGTH, conditions.MAX_CONDITION_DEPTH) == (1000, 32)
    _only_error(_write(tmp_path, WHEN_SOP % json.dumps(condition)), capsys, 14, "steps.0.when", phrase)


@pytest.mark.parametrize(("text", "line", "field"), [
    (MINIMAL + "? [a, b]\n: x\n", 11, "(top)"),
    (MINIMAL + "1: x\n", 11, "(top)"),
    (MINIMAL + "null: x\n", 11, "(top)"),
    (MINIMAL + "{a: 1}: b\n", 11, "(top)"),
    (MINIMAL.replace("roles: {rep: [Alex Kim]}", "roles: {rep: [Alex Kim], on: [Sam Lee]}"), 6, "roles"),
], ids=["list", "integer", "null", "mapping", "bool_in_roles"])
def test_a_key_that_is_not_text_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, field: str,
) -> None:
    _only_error(_write(tmp_path, text), capsys, line, field, "keys must be text")


@pytest.mark.parametrize(("text", "line", "field", "phrase"), [
    (MINIMAL.replace("Minimal SOP", "!!python/object:os.system ls"), 2, "name", "tag !!python/object:os.system"),
    (MINIMAL.replace("Minimal SOP", "!!binary aGVsbG8="), 2, "name", "tag !!binary is not allowed"),
    (MINIMAL + "compliance: !!set {a, b}\n", 11, "compliance", "tag !!set is not allowed"),
    (MINIMAL.replace("Minimal SOP", "!custom x"), 2, "name", "tag !custom is not allowed"),
    (MINIMAL.replace("Test Owner", "2024-01-01"), 4, "owner", "valid string"),
    (MINIMAL.replace("2027-01-31", "2027-02-30"), 5, "objective.deadline", "cannot read '2027-02-30' as a date"),
    (MINIMAL.replace("version: 1", "version: 1" + "0" * 5000), 3, "version", "as an integer"),
    (MINIMAL.replace("version: 1", "version: !!int ''"), 3, "version", "cannot read '' as an integer"),
    (MINIMAL.replace("Minimal SOP", "Minimal\x07SOP"), 2, "(yaml)", "character U+0007 is not allowed in YAML"),
    (MINIMAL + "---\n" + MINIMAL, 11, "(yaml)", "one YAML document per file"),
    ("id: x\nname: [a, b\n", 2, "(yaml)", "not valid YAML"),
    ("", 1, "(top)", "must be a mapping"),
    ("# only a comment\n", 1, "(top)", "must be a mapping"),
    ("just text\n", 1, "(top)", "must be a mapping"),
    ("- a\n- b\n", 1, "(top)", "must be a mapping"),
], ids=["python_tag", "binary", "set", "local_tag", "timestamp_for_text", "impossible_date", "huge_integer",
        "empty_integer", "control_character", "two_documents", "unclosed_at_end", "empty", "only_comment",
        "top_scalar", "top_list"])
def test_anything_else_yaml_can_throw_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, field: str, phrase: str,
) -> None:
    _only_error(_write(tmp_path, text), capsys, line, field, phrase)


def test_an_sop_with_too_many_steps_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = "".join(f"  - {{id: s{n}, kind: wait, owner: rep, duration: 1d}}\n" for n in range(1200))
    _only_error(_write(tmp_path, MINIMAL.split("steps:\n")[0] + "steps:\n" + steps), capsys, 9, "steps",
                "at most 100 items")


def test_a_version_beyond_the_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _only_error(_write(tmp_path, MINIMAL.replace("version: 1", "version: 0x1000000000")), capsys, 3, "version",
                "less than or equal to 2147483647")


def test_a_flood_of_errors_is_listed_up_to_a_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = "".join(f"  - {{id: step_{n}, kind: update_lead, owner: nobody, status: working}}\n" for n in range(90))
    path = _write(tmp_path, MINIMAL.split("steps:\n")[0] + "steps:\n" + steps)
    assert cli.main(["validate", str(path)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == loader.MAX_ERRORS + 1 and all(e.startswith(f"{path}:") for e in errors)
    assert errors[-1] == f"{path}:60: (file): 40 more errors from here on; fix the ones above first"
