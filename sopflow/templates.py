"""Email templates: one Jinja2 file per email with `subject`, `text` and optional `html` blocks.

Templates render in a sandbox with strict undefined, so a missing variable is an error,
not an empty string. A value that is None (a lead without a company) prints as nothing, never
as "None"; `{{ lead.company | default("your team") }}` (or `d(...)`) prints the fallback instead,
for None as for a missing value. The html block renders with autoescaping; subject and text without.
Only files inside the templates directory are read, even through names or symlinks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment

REQUIRED_BLOCKS = ("subject", "text")
FALLBACK_FILTERS = ("default", "d")
VarPath = tuple[str, ...]


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


def _nothing_for_none(value: Any) -> Any:
    """What `{{ value }}` prints: nothing for None, never the word "None"."""
    return "" if value is None else value


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja2's `default` filter, which also replaces None (an empty lead field), not only a missing value."""
    if value is None or isinstance(value, jinja2.Undefined) or (boolean and not value):
        return default_value
    return value


@lru_cache(maxsize=16)
def _environment(template_dir: Path, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=_InsideLoader(template_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=False,
        finalize=_nothing_for_none,
    )
    env.filters.update(dict.fromkeys(FALLBACK_FILTERS, _default))
    return env


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


def _parse(template_dir: Path, name: str) -> jinja2.nodes.Template:
    source = template_file(template_dir, name).read_text(encoding="utf-8")
    return _environment(template_dir, False).parse(source)


def _chain(node: jinja2.nodes.Node) -> VarPath | None:
    """`lead.company` as ("lead", "company"); None when the chain does not start at a variable."""
    parts: list[str] = []
    while isinstance(node, jinja2.nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if isinstance(node, jinja2.nodes.Name) and node.ctx == "load":
        return (node.name, *reversed(parts))
    return None


def _paths(node: jinja2.nodes.Node) -> set[VarPath]:
    """Every variable path read anywhere in `node`: its longest chains and their prefixes."""
    found = {_chain(n) for n in node.find_all((jinja2.nodes.Getattr, jinja2.nodes.Name))}
    found.update({_chain(node)} if isinstance(node, (jinja2.nodes.Getattr, jinja2.nodes.Name)) else ())
    return {path for path in found if path}


def variables_used(template_dir: Path, name: str) -> set[VarPath]:
    """The variables template `name` reads from its context, as paths: ("lead", "company"), ("sop",)."""
    tree = _parse(template_dir, name)
    local = {n.name for n in tree.find_all(jinja2.nodes.Name) if n.ctx in ("store", "param")}
    paths = {p for p in _paths(tree) if p[0] not in local}
    # keep only the longest path of each chain: lead.company, not also lead
    return {p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)}


def printed_without_fallback(template_dir: Path, name: str) -> set[VarPath]:
    """The variables template `name` prints with nothing said for when they are empty.

    A value has a fallback when it goes through `default(...)`/`d(...)`, is a left operand of `or`,
    or is printed inside `{% if value %}` or `value if value else ...`.
    """
    return set(_unguarded(_parse(template_dir, name), frozenset()))


def _unguarded(node: jinja2.nodes.Node, guarded: frozenset[VarPath]) -> Iterator[VarPath]:
    """Variables printed in the `{{ }}` outputs under statement `node` without a fallback."""
    if isinstance(node, jinja2.nodes.Output):
        for expr in node.nodes:
            yield from _bare(expr, guarded)
        return
    if isinstance(node, jinja2.nodes.If):
        for child in node.body:
            yield from _unguarded(child, guarded | _paths(node.test))
        for child in (*node.elif_, *node.else_):
            yield from _unguarded(child, guarded)
        return
    for child in node.iter_child_nodes():
        yield from _unguarded(child, guarded)


def _bare(expr: jinja2.nodes.Node, guarded: frozenset[VarPath]) -> Iterator[VarPath]:
    """Variables whose own value expression `expr` prints, as it is, when they are empty."""
    nodes, path = jinja2.nodes, _chain(expr)
    if isinstance(expr, nodes.Filter) and expr.name in FALLBACK_FILTERS:
        return
    if isinstance(expr, nodes.Or):  # the left side is printed only when it is not empty
        yield from _bare(expr.right, guarded)
    elif isinstance(expr, nodes.CondExpr):
        yield from _bare(expr.expr1, guarded | _paths(expr.test))
        if expr.expr2 is not None:
            yield from _bare(expr.expr2, guarded)
    elif isinstance(expr, (nodes.Compare, nodes.Test, nodes.Not, nodes.And)):
        return  # prints True or False, not the value
    elif path is not None:
        if path not in guarded:
            yield path
    else:
        for child in expr.iter_child_nodes():
            yield from _bare(child, guarded)


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
