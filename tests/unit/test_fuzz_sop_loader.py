"""Property tests: whatever bytes an SOP file holds, validation reports located one-line errors and never raises."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sopflow import cli
from sopflow.catalog import validate
from sopflow.errors import SopError

SOP_DIR = Path(__file__).resolve().parents[2] / "sop_definitions"
SEED_LINES = (SOP_DIR / "lead-qualification.yaml").read_bytes().splitlines(keepends=True)
KEY = re.compile(rb"^(\s*(?:- )?)([A-Za-z_]\w*)(:)")

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def sop_path(tmp_path: Path) -> Path:
    """Where each example is written: beside a copy of the seed templates, so the seed SOP is valid there."""
    shutil.copytree(SOP_DIR / "templates", tmp_path / "templates")
    return tmp_path / "fuzzed.yaml"


def _assert_located(path: Path, raw: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    """validate() returns located one-line errors for `path`; `sopflow validate` exits 0 or 1 without a traceback."""
    path.write_bytes(raw)
    try:
        lines = max(1, len(raw.decode("utf-8").splitlines()))
    except UnicodeDecodeError:
        lines = max(1, len(raw.splitlines()))
    loaded, errors = validate([path])
    assert len(loaded) + bool(errors) == 1
    for error in errors:
        assert isinstance(error, SopError)
        assert error.file == path
        assert 1 <= error.line <= lines, error
        assert error.field, error
        assert len(error.reason.splitlines()) == 1 and error.reason.strip(), error
    capsys.readouterr()
    assert cli.main(["validate", str(path)]) == (1 if errors else 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert len([line for line in err.splitlines() if ": warning: " not in line]) == len(errors)


@FUZZ
@given(text=st.text())
def test_any_text_is_reported_not_raised(sop_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    _assert_located(sop_path, text.encode(), capsys)


@FUZZ
@given(raw=st.binary())
def test_any_bytes_are_reported_not_raised(sop_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes) -> None:
    _assert_located(sop_path, raw, capsys)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
# JSON is YAML, so values in flow style; or a plain scalar of a few characters, without line breaks.
_VALUES = _JSON.map(json.dumps).map(str.encode) | st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x85\u2028\u2029"), max_size=12,
).map(str.encode)


@st.composite
def mutated_seed(draw: st.DrawFn) -> bytes:
    """The seed SOP with one to three edits: lines deleted or duplicated, values or keys replaced, bytes added."""
    lines = list(SEED_LINES)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["delete", "duplicate", "value", "key", "bytes"]))
        match = KEY.match(lines[at])
        if edit == "delete":
            del lines[at]
        elif edit == "duplicate":
            lines.insert(at, lines[at])
        elif edit == "value" and match:
            lines[at] = match.group(0) + b" " + draw(_VALUES) + b"\n"
        elif edit == "key" and match:
            key = draw(st.from_regex(rb"\A[A-Za-z_][\w-]{0,12}\Z") | _VALUES)
            lines[at] = match.group(1) + key + lines[at][match.end(2):]
        else:
            offset = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:offset] + draw(st.binary(min_size=1, max_size=8)) + lines[at][offset:]
        if not lines:
            break
    return b"".join(lines)


def test_the_seed_is_valid_beside_its_templates(sop_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _assert_located(sop_path, b"".join(SEED_LINES), capsys)
    assert validate([sop_path])[1] == []


@FUZZ
@given(raw=mutated_seed())
def test_a_mutated_seed_is_reported_not_raised(sop_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes) -> None:
    _assert_located(sop_path, raw, capsys)
