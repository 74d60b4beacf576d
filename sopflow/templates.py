"""Email templates: one Jinja2 file per email with `subject`, `text` and optional `html` blocks.

Templates render in a sandbox with strict undefined, so a missing variable is an error,
not an empty string. The html block renders with autoescaping; subject and text without.
Only files inside the templates directory are read, even through names or symlinks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment

REQUIRED_BLOCKS = ("subject", "text")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


class TemplateOutside(ValueError):
    """A template whose file resolves outside its templates directory (by its name or through a symlink)."""


class _InsideLoader(jinja2.FileSystemLoader):
    """Loads templates, and the files they include, only from inside its directory."""

    def __init__(self, template_dir: Path) -> None:
        super().__init__(template_dir)
        self.template_dir = template_dir

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        _inside(self.template_dir, self.template_dir.joinpath(*split_template_path(template)))
        return super().get_source(environment, template)


@lru_cache(maxsize=16)
def _environment(template_dir: Path, autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=_InsideLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=False,
    )


def template_file(template_dir: Path, name: str) -> Path:
    """The file of template `name`; TemplateOutside when it resolves outside `template_dir`."""
    return _inside(template_dir, template_dir / f"{name}.j2")


def _inside(template_dir: Path, path: Path) -> Path:
    if not path.resolve().is_relative_to(template_dir.resolve()):
        raise TemplateOutside(f"template {path.name.removesuffix('.j2')!r} resolves outside {template_dir}; "
                              "a template must be a file inside it")
    return path


def check_template(template_dir: Path, name: str) -> str | None:
    """The reason template `name` cannot be used, or None when it can."""
    try:
        path = template_file(template_dir, name)
    except TemplateOutside as exc:
        return str(exc)
    if not path.is_file():
        return f"template {name!r} not found (expected {path})"
    try:
        template = _environment(template_dir, False).get_template(path.name)
    except jinja2.TemplateSyntaxError as exc:
        return f"template {path.name} line {exc.lineno}: {exc.message}"
    missing = [block for block in REQUIRED_BLOCKS if block not in template.blocks]
    if missing:
        return f"template {path.name} has no {' or '.join(missing)} block"
    return None


def variables_used(template_dir: Path, name: str) -> set[tuple[str, ...]]:
    """The variables template `name` reads from its context, as paths: ("lead", "company"), ("sop",)."""
    env = _environment(template_dir, False)
    source = template_file(template_dir, name).read_text(encoding="utf-8")
    tree = env.parse(source)
    local = {n.name for n in tree.find_all(jinja2.nodes.Name) if n.ctx in ("store", "param")}
    paths: set[tuple[str, ...]] = set()
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Name)):
        parts: list[str] = []
        while isinstance(node, jinja2.nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        if isinstance(node, jinja2.nodes.Name) and node.ctx == "load" and node.name not in local:
            paths.add((node.name, *reversed(parts)))
    # keep only the longest path of each chain: lead.company, not also lead
    return {p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)}


def render_email(template_dir: Path, name: str, variables: dict[str, Any]) -> RenderedEmail:
    """Render the subject, text and html blocks of template `name` with `variables`."""
    filename = template_file(template_dir, name).name

    def block(block_name: str, autoescape: bool) -> str | None:
        template = _environment(template_dir, autoescape).get_template(filename)
        if block_name not in template.blocks:
            return None
        context = template.new_context(dict(variables))
        return "".join(template.blocks[block_name](context)).strip()

    return RenderedEmail(
        subject=" ".join((block("subject", False) or "").split()),
        text=block("text", False) or "",
        html=block("html", True),
    )
