"""``latentlab models``: the model families, each with its paper, an advantage and a problem,
and the measurement ``latentlab compare`` uses for each claim."""

from __future__ import annotations

import typer

from latentlab.cli.common import command, console

app = typer.Typer()


@command(app, "models")
def models(
    links: bool = typer.Option(True, "--links/--no-links", help="show each paper's link"),
) -> None:
    """List the model families: paper, what each adds to a plain AE, one advantage, one problem."""
    from rich.table import Table

    from latentlab.models.cards import CARDS

    table = Table(title="latentlab model families (train: --model NAME --backbone fcn|conv|resnet)",
                  show_lines=True, title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("paper", overflow="fold")
    table.add_column("adds to a plain AE")
    table.add_column("advantage \\[measured by]")
    table.add_column("problem \\[measured by]")
    for card in CARDS:
        paper = f"{card.authors} ({card.year}), {card.title}. {card.venue}"
        if links:
            paper += f"\n[link={card.link}]{card.link}[/link]"
        backbones = f"\nbackbones: {', '.join(card.backbones)} (default {card.default_backbone})"
        table.add_row(card.name, paper, card.adds + backbones,
                      f"{card.advantage.text} [dim]\\[{card.advantage.measure}][/]",
                      f"{card.problem.text} [dim]\\[{card.problem.measure}][/]")
    console.print(table)
