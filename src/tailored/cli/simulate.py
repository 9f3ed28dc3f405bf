"""`tailored simulate`: policies in a simulated world with hidden ground truth, in process or over HTTP."""

from __future__ import annotations

import typer

app = typer.Typer()
