"""`tailored ope`: off-policy evaluation of a policy from an exposure log."""

from __future__ import annotations

import typer

app = typer.Typer()
