"""Email templates: rendering, escaping, strictness, the sandbox and check_template."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2.exceptions import SecurityError

from sopflow.templates import check_template, printed_without_fallback, render_email

WELCOME = """\
{% block subject %}
  Hello   {{ lead.name }}
{% endblock %}
{% block text %}
Dear {{ lead.name }},
thanks.
{% endblock %}
{% block html %}<p>Dear {{ lead.name }},</p>{% endblock %}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.j2"
    path.write_text(text)
    return directory


def test_renders_subject_text_and_html(tmp_path: Path) -> None:
    email = render_email(write(tmp_path, "welcome", WELCOME), "welcome", {"lead": {"name": "Ann Lee"}})
    assert email.subject == "Hello Ann Lee"  # whitespace collapsed to one line
    assert email.text == "Dear Ann Lee,\nthanks."
    assert email.html == "<p>Dear Ann Lee,</p>"


def test_html_is_none_without_an_html_block(tmp_path: Path) -> None:
    text = "{% block subject %}Hi{% endblock %}{% block text %}Body{% endblock %}"
    email = render_email(write(tmp_path, "plain", text), "plain", {})
    assert (email.subject, email.text, email.html) == ("Hi", "Body", None)


def test_html_is_autoescaped_but_subject_and_text_are_not(tmp_path: Path) -> None:
    email = render_email(write(tmp_path, "welcome", WELCOME), "welcome", {"lead": {"name": "<b>Ann</b>"}})
    assert email.html == "<p>Dear &lt;b&gt;Ann&lt;/b&gt;,</p>"
    assert "<b>Ann</b>" in email.subject
    assert "<b>Ann</b>" in email.text


def test_missing_variable_raises(tmp_path: Path) -> None:
    with pytest.raises(jinja2.UndefinedError, match="name"):
        render_email(write(tmp_path, "welcome", WELCOME), "welcome", {"lead": {}})


@pytest.mark.parametrize(
    "expression",
    ["lead.__class__.__mro__", "lead.__class__", '"{0.__class__}".format(lead)', "''.__class__.__base__.__subclasses__()"],
)
def test_sandbox_blocks_unsafe_attributes(tmp_path: Path, expression: str) -> None:
    text = "{% block subject %}{{ " + expression + " }}{% endblock %}{% block text %}x{% endblock %}"
    with pytest.raises(SecurityError):
        render_email(write(tmp_path, "evil", text), "evil", {"lead": {"name": "Ann"}})


def test_the_example_template_renders() -> None:
    templates = Path(__file__).resolve().parents[2] / "sop_definitions" / "templates"
    email = render_email(templates, "qualified_follow_up", {"lead": {"company": "Acme", "first_name": "Ann"}})
    assert email.subject == "Next steps for Acme"
    assert email.text.startswith("Hi Ann,")
    assert email.html is not None and email.html.startswith("<p>Hi Ann,</p>")


def test_check_template_accepts_a_good_template(tmp_path: Path) -> None:
    assert check_template(write(tmp_path, "welcome", WELCOME), "welcome") is None


CHECKS = [
    (None, "template 'welcome' not found"),
    ("{% block text %}x{% endblock %}", "welcome.j2 has no subject block"),
    ("{% block subject %}x{% endblock %}", "welcome.j2 has no text block"),
    ("Hello", "welcome.j2 has no subject or text block"),
    ("{% block subject %}x{% endblock %}\n{% block text %}{% if %}{% endblock %}", "welcome.j2 line 2: "),
    ("{% block subject %}{{ lead.name }{% endblock %}", "welcome.j2 line 1: "),
]


@pytest.mark.parametrize(("text", "reason"), CHECKS)
def test_check_template_reports_problems(tmp_path: Path, text: str | None, reason: str) -> None:
    if text is not None:
        write(tmp_path, "welcome", text)
    found = check_template(tmp_path, "welcome")
    assert found is not None and reason in found


NONE_CASES = [
    ("Hi {{ lead.name }}!", "Hi !"),  # None prints nothing, never "None"
    ('Hi {{ lead.name | default("there") }}!', "Hi there!"),  # default replaces None, not only a missing value
    ('Hi {{ lead.name | d("there") }}!', "Hi there!"),
    ('Hi {{ lead.name or "there" }}!', "Hi there!"),
    ('Hi {{ lead.title | default("there") }}!', "Hi there!"),  # a key the lead does not have
    ('Hi {{ lead.company | default("there") }}!', "Hi Acme!"),
    ('Hi {{ lead.blank | default("there", true) }}!', "Hi there!"),  # boolean=true: empty text too
]


@pytest.mark.parametrize(("text", "expected"), NONE_CASES)
def test_none_renders_as_nothing_or_as_its_default(tmp_path: Path, text: str, expected: str) -> None:
    template = "{% block subject %}" + text + "{% endblock %}{% block text %}" + text + "{% endblock %}" \
               "{% block html %}<p>" + text + "</p>{% endblock %}"
    lead = {"name": None, "company": "Acme", "blank": ""}
    email = render_email(write(tmp_path, "hi", template), "hi", {"lead": lead})
    assert (email.subject, email.text, email.html) == (expected, expected, f"<p>{expected}</p>")


def test_a_missing_value_without_default_still_raises(tmp_path: Path) -> None:
    with pytest.raises(jinja2.UndefinedError, match="title"):
        render_email(write(tmp_path, "hi", "{% block subject %}{{ lead.title }}{% endblock %}"), "hi", {"lead": {}})


PRINTED = [
    ("{{ lead.name }} {{ sop.name }}", {("lead", "name"), ("sop", "name")}),
    ('{{ lead.name | default("x") }} {{ lead.company | upper }}', {("lead", "company")}),
    ("{{ lead.name or lead.company }}", {("lead", "company")}),
    ('{{ lead.name if lead.name else lead.title }}', {("lead", "title")}),
    ("{% if lead.name %}{{ lead.name }}{% else %}{{ lead.company }}{% endif %}", {("lead", "company")}),
    ("{% if lead.name %}x{% elif lead.company %}{{ lead.name }}{% endif %}", {("lead", "name")}),
    ("{{ lead.score > 10 }} {% for x in steps.s.breakdown %}{{ x.rule }}{% endfor %}", {("x", "rule")}),
]


@pytest.mark.parametrize(("text", "expected"), PRINTED)
def test_printed_without_fallback(tmp_path: Path, text: str, expected: set) -> None:
    body = "{% block subject %}s{% endblock %}{% block text %}" + text + "{% endblock %}"
    assert printed_without_fallback(write(tmp_path, "t", body), "t") == expected
