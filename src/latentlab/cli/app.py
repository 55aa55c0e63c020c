"""The ``latentlab`` command: one thin module per command group, registered here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="latentlab",
    help="Train autoencoders on images and look inside them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines ``app`` (a typer.Typer) whose commands are merged into the top level.
COMMAND_MODULES = [
    "latentlab.cli.demo",
    "latentlab.cli.train",
    "latentlab.cli.inspect",
    "latentlab.cli.latent",
]

for _name in COMMAND_MODULES:
    app.registered_commands += importlib.import_module(_name).app.registered_commands


def main() -> None:
    app()


if __name__ == "__main__":
    main()
