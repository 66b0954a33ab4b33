"""`colorize info`: what a .onnx model is and where it can run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def info_command(
    model: Annotated[Path, typer.Argument(help="A .onnx model written by `colorize export`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print everything, full metadata included, as JSON.")] = False,
    providers: Annotated[
        bool, typer.Option(help="Check which onnxruntime execution providers can run the model here.")
    ] = True,
) -> None:
    """Show a model's metadata, inputs and outputs, opset, size, parameters and usable execution providers."""
    from labcolor.runtime.info import inspect_model

    info = inspect_model(model, providers=providers)
    typer.echo(json.dumps(info.to_dict(), indent=2, sort_keys=True) if as_json else "\n".join(info.lines()))
