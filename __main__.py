"""`python -m labcolor ...` and the `colorize` console script.

The command-line dependencies (typer, rich) are the `cli` extra, so an app that embeds only the
runtime does not get them; this entry point says how to add them instead of a traceback.
"""

from __future__ import annotations


def main() -> None:
    try:
        import rich  # noqa: F401 - only probing for the cli extra
        import typer  # noqa: F401
    except ImportError as exc:
        import sys

        sys.stderr.write(f"error: the colorize command needs the cli extra ({exc.name} is missing): "
                         "pip install 'labcolor[cli,cpu]' (or [cli,gpu])\n")
        raise SystemExit(2) from None
    from labcolor.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
