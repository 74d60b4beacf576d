"""The `sopflow` command line (typer + rich); `main` is the console entry point."""

from __future__ import annotations

import os
import sys

import typer

from sopflow.cli import (approvals, audit, catalogue, db, export, feedback, history, leads, report, review, runs,  # noqa: F401
                         show, snop, sops)  # (each registers its commands)
from sopflow.cli.app import app
from sopflow.cli.output import ReaderGone
from sopflow.errors import SopInvalid


def _command_path(argv: list[str]) -> str:
    """`sopflow lead add` for ["lead", "add", "--email", ...]: which command an error belongs to."""
    commands = getattr(typer.main.get_command(app), "commands", {})
    words = ["sopflow"]
    for word in argv:
        if word not in commands:
            break
        commands = getattr(commands[word], "commands", {})
        words.append(word)
    return " ".join(words)


def _quiet_stdout() -> None:
    """The reader went away (`sopflow runs | head -1`): send what is left to /dev/null, so exit says nothing."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture stdout)
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` (default: the process arguments) and return its exit status.

    Usage errors exit 2 through SystemExit, as argparse did; every other outcome is returned.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = typer.main.get_command(app).main(args=argv, prog_name="sopflow", standalone_mode=False)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except typer.TyperException as exc:  # a usage error: typer's own click raises these
        from typer import rich_utils  # here, not above: importing it costs every command 0.15 to 0.3 s

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    except typer.Abort:
        print("sopflow: aborted", file=sys.stderr)
        return 130
    except (ReaderGone, BrokenPipeError):
        _quiet_stdout()
        return 0
    except SopInvalid as exc:
        print(exc, file=sys.stderr)
        print("sopflow: fix the SOP files above (see `sopflow validate`)", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # PrefectUnavailable, a server that would not start, a run not paused
        print(f"{_command_path(argv)}: {exc}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


__all__ = ["app", "main"]
