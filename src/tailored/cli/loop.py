"""`tailored loop --config loop.toml [--once] [--every 1d]`: the improvement loop (docs/loop.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tailored.cli.common import console, handle_errors
from tailored.errors import ConfigError

EXIT_ALERT = 1
"""A cycle stopped by a failed quality check (its alert is printed and audited): cron mails it."""


@handle_errors
def loop(
    config: Annotated[Path, typer.Option("--config", help="The loop's TOML (configs/loop.example.toml).")],
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit (the default; cron-friendly).")] = False,
    every: Annotated[str | None, typer.Option(
        "--every", help="Keep running: a cycle every DURATION (e.g. 1d, 6h, 30m).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the (last) cycle's report as JSON.")] = None,
) -> None:
    """One cycle of the improvement loop: read new events, check quality (stop and alert on failure), check drift,
    retrain a candidate, evaluate it against the champion on a fresh frozen sample, canary it, then promote on a win
    or roll back on a loss. Each step is audited; a cycle killed midway resumes on the next run."""
    from tailored.loop.config import load_loop_config
    from tailored.loop.cycle import Loop, every_seconds, run_every

    if once and every is not None:
        raise ConfigError("--once and --every exclude each other: --once runs one cycle, --every keeps running.")
    settings = load_loop_config(config)
    if every is not None:
        run_every(settings, every_seconds(every), lambda report: _show(report, output))
        return
    report = Loop(settings).run_cycle()
    _show(report, output)
    if "alert" in report:
        raise typer.Exit(EXIT_ALERT)


def _show(report: dict[str, Any], output: Path | None) -> None:
    from tailored.data.io import write_text

    for step in report["steps"]:
        details = ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                            for key, value in step.items() if key != "step" and not isinstance(value, dict | list))
        console.print(f"cycle {report['cycle']} [bold]{step['step']}[/]: {details}", highlight=False, soft_wrap=True)
    if "alert" in report:
        console.print(f"[bold red]alert:[/] {report['alert']}", highlight=False, soft_wrap=True)
    console.print(f"phase: {report['phase']}")
    if output is not None:
        write_text(json.dumps(report, indent=2, default=str), output)
