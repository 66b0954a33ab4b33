"""`colorize`: the command-line edge of labcolor.

This module is the app and nothing else: its root options, the commands (one module each in
labcolor.commands), `colorize PATH...` as the default command (_route), and the one place where
errors become messages and exit codes (_Edge). Commands import torch and onnxruntime inside
their bodies, so `colorize --help` starts fast and never imports torch.

Exit codes: 0 done, 1 some inputs of a folder run failed, 2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from labcolor import __version__
from labcolor.commands import colorize, curves, evaluate, export, info, recalibrate, serve, train
from labcolor.commands._common import err, interrupted, setup_logging
from labcolor.core.errors import LabcolorError

EXIT_BAD_INPUT = 2  # click's own code for usage errors, so a bad option and a bad input read alike


class _Edge(TyperGroup):
    """The app's group, which turns the errors labcolor raises on purpose into one line and exit 2.

    The catch sits in the group's invoke, around the root callback and whichever command runs, because
    every way in passes there: the console script, `python -m labcolor` and CliRunner in the tests
    (which never calls main()). Commands then raise and never catch; nor does a new command have to
    remember a decorator, or have its signature (train's is generated) wrapped by one.

    Besides LabcolorError it catches OSError: the file system's own failures (permission denied, disk
    full, a path that is not there) are the user's situation, not a bug, and their message names the
    path. Anything else is a bug and keeps its traceback. --verbose prints the traceback of caught
    errors too, above the one-line message.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LabcolorError, OSError) as exc:
            if ctx.params.get("verbose"):
                trace = "".join(traceback.format_exception(exc)).rstrip()
                err.print(trace, markup=False, highlight=False, soft_wrap=True)
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            raise interrupted() from None


app = typer.Typer(
    name="colorize",
    cls=_Edge,
    help="Colorize grayscale photos with a Lab-space GAN; train, export, inspect and evaluate models.\n\n"
    "[b]Main job:[/] [cyan]colorize PATH...[/] colorizes pictures and folders (recursive) with the model shipped "
    "in the package, writing [cyan]<folder>_colorized/[/]. See [cyan]colorize run --help[/].",
    epilog="[b]Default command:[/] [cyan]colorize PATH...[/] means [cyan]colorize run PATH...[/] (see colorize run "
    "--help); a file or folder named like a command is reached by its path, e.g. [cyan]colorize ./train[/]",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"labcolor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug details; show the traceback of an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only log warnings and errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    setup_logging(verbose=verbose, quiet=quiet)


# Registration order is the order of `colorize --help`.
app.command("train")(train.train_command)
app.command("recalibrate")(recalibrate.recalibrate_command)
app.command("eval")(evaluate.eval_command)
app.command("curves")(curves.curves_command)
app.command("export")(export.export_command)
app.command("info")(info.info_command)
app.command("serve")(serve.serve_command)
app.command("run")(colorize.run_command)

_ROOT_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})
_ROOT_ONLY = frozenset({"--help", "--version", "--install-completion", "--show-completion"})


def _route(args: list[str]) -> list[str]:
    """Make `run` the default command: `colorize [-v|-q] PATH... [opts]` -> `colorize [-v|-q] run PATH... [opts]`.

    Only the first token after the root flags decides: a command name stays a command (so a folder named
    `train` is given as ./train), --help and --version stay the root's, anything else (a path, or a `run`
    option such as -o) goes to `run`.
    """
    names = {c.name for c in app.registered_commands if c.name} | {g.name for g in app.registered_groups if g.name}
    i = 0
    while i < len(args) and args[i] in _ROOT_FLAGS:
        i += 1
    if i == len(args) or args[i] in names or args[i] in _ROOT_ONLY:
        return args
    # `colorize photos -q` reads naturally; run has no -v/-q of its own, so they move to the root.
    end = args.index("--") if "--" in args else len(args)
    rest = [a for a in args[i:end] if a not in _ROOT_FLAGS] + args[end:]
    moved = [a for a in args[i:end] if a in _ROOT_FLAGS]
    return [*args[:i], *moved, "run", *rest]


def main() -> None:
    """Console-script entry point; `colorize PATH...` runs the default command (see _route)."""
    app(args=_route(sys.argv[1:]), prog_name="colorize")


if __name__ == "__main__":
    main()
