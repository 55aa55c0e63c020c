"""The disentanglement scores of one run as a rich table (the CLI prints it)."""

from __future__ import annotations

from typing import Any

from latentlab.metrics.evaluate import SCORES

LABELS = {"beta_vae": "BetaVAE score", "factor_vae": "FactorVAE score", "mig": "MIG", "sap": "SAP",
          "dci_disentanglement": "DCI disentanglement", "dci_completeness": "DCI completeness",
          "dci_informativeness": "DCI informativeness"}


def scores_table(result: dict[str, Any]) -> Any:
    """Score, value, and a note (time taken, or why it was skipped)."""
    from rich.table import Table

    table = Table(title=f"{result.get('run', 'code')} on {result.get('data', '?')} "
                        f"(latent {result.get('latent_dim', '?')}, seed {result['seed']})")
    for column in ("score", "value", "note"):
        table.add_column(column)
    seconds = result.get("seconds", {})
    skipped = result.get("skipped", {})
    for name in SCORES:
        value = result["scores"].get(name)
        family = "dci" if name.startswith("dci_") else name
        if value is not None:
            note = f"{seconds[family]:.1f} s" if family in seconds else ""
            table.add_row(LABELS[name], f"{value:.3f}", note)
        else:
            table.add_row(LABELS[name], "-", skipped.get(family, ""))
    return table
