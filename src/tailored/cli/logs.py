"""`tailored logs export`: the exposure log (what was shown, where, with which propensity) and its rewards."""

from __future__ import annotations

import typer

app = typer.Typer(help="The exposure log.", no_args_is_help=True)
