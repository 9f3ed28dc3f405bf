"""`python -m tailored` runs the command line."""

from tailored.cli import app

app()
