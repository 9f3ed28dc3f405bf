"""`tailored ope`: off-policy evaluation of a policy from an exposure log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailored.cli.common import console, handle_errors, refuse_overwrite, say, warn
from tailored.errors import ConfigError

app = typer.Typer()

REWARD_CHOICES = ("click", "purchase", "revenue")


@app.command("ope")
@handle_errors
def ope(
    policy: Annotated[str, typer.Option("--policy", help="The target policy's spec, e.g. greedy, "
                                                         "softmax:temperature=0.5, uniform.")],
    output: Annotated[Path, typer.Option("--output", help="Result file (.json).")],
    log: Annotated[Path | None, typer.Option("--log", help="Feedback log (.csv/.parquet) as `tailored logs export` "
                                                           "writes it.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Read the feedback log from this store's database URL "
                                                        "instead of --log.")] = None,
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="The model whose candidates the target policy ranks (optional for uniform: then the "
                            "items seen in the log).")] = None,
    reward: Annotated[str, typer.Option("--reward", help="click | purchase | revenue.")] = "click",
    estimators: Annotated[str, typer.Option("--estimators", help="Comma-separated: ips, snips, dm, dr, pi.")
                          ] = "ips,snips,dm,dr",
    samples: Annotated[int, typer.Option("--samples", min=1, help="Bootstrap resamples (over lists).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
) -> None:
    """Estimate the target policy's expected reward per list from a feedback log (one row per shown position, with
    the logging policy's propensities): IPS, self-normalised IPS, direct method, doubly robust, slate pseudo-inverse,
    each with a 95 % bootstrap interval and effective sample size. Warns when the target leaves the logging policy's
    support or a few rows decide the estimate."""
    from tailored.eval.ope import ESTIMATORS
    from tailored.jobs.ope import run_ope

    if reward not in REWARD_CHOICES:
        raise ConfigError(f"--reward {reward!r}: use one of {', '.join(REWARD_CHOICES)}.")
    chosen = [name.strip() for name in estimators.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ESTIMATORS]
    if unknown or not chosen:
        raise ConfigError(f"--estimators {estimators!r}: choose among {', '.join(ESTIMATORS)} (comma-separated).")
    if output.suffix.lower() != ".json":
        raise ConfigError(f"--output {output} must be a .json file.")
    if (log is None) == (db is None):
        raise ConfigError("Give the feedback log as exactly one of --log FILE or --db URL.")
    refuse_overwrite({"--output": output}, {"--log": log, "--model-dir": model_dir})
    result = run_ope(log, db, model_dir, policy, reward, chosen, output, samples=samples, seed=seed)
    say(f"{result['policy']}: {result['reward']} per list over {result['n']:,} lists ({result['rows']:,} shown "
        f"positions); logged policy {result['logged_value']:.6g}")
    for name, found in result["estimates"].items():
        ess = "" if found["ess"] is None else f"  ess {found['ess']:,.1f}"
        say(f"  {name:>5}  {found['value']:.6g}  [{found['ci'][0]:.6g}, {found['ci'][1]:.6g}]{ess}")
    for text in result["warnings"]:
        warn(text)
    console.print(f"[green]wrote[/] {output}")
