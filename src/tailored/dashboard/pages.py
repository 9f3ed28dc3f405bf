"""The dashboard's pages as HTML: one `page_body` per page from its numbers (`numbers.numbers`), wrapped by `shell`
(the service: one page per address) or `report` (one static file with every page). Every number shown is in an
element whose ``data-key`` is its path in the page's JSON (``days.3.click_rate``), so the page can be checked
against its API."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime, UTC
from html import escape
from urllib.parse import quote
from typing import Any

from tailored import __version__
from tailored.dashboard.charts import bar_chart, line_chart
from tailored.dashboard.numbers import BUSINESS, DRIFT, EXPOSURE, PAGES
from tailored.dashboard.refresh import EXPERIMENTS_REFRESH_SECONDS
from tailored.dashboard.style import CSS

MISSING = "—"
LABELS = {"impressions": "Impressions", "lists": "Lists", "users": "Users", "click_rate": "Click rate",
          "conversion": "Conversion", "revenue": "Revenue", "average_basket": "Average basket",
          "sales_share": "Sales share", "coverage": "Coverage", "exposure_gini": "Exposure Gini",
          "long_tail_share": "Long-tail share", "new_item_share": "New-item share", "fallback_rate": "Fallback rate",
          "latency_p50_ms": "Latency p50 (ms)", "latency_p99_ms": "Latency p99 (ms)", "psi_users": "PSI users",
          "psi_items": "PSI items", "psi_scores": "PSI scores", "exposure_share": "Exposure share"}


def shown(value: Any) -> str:
    """A value as the pages write it: integers with thousands separators, floats to 4 significant digits (fixed
    notation between 1e-4 and 1e15), None as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0 or 1e-4 <= abs(value) < 1e15:
        digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 0
        return f"{value:,.{digits}f}"
    return f"{value:.3e}"


def when(seconds: float | None) -> str:
    """Unix seconds as a UTC time."""
    if seconds is None:
        return MISSING
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def value(number: Any, key: str, tag: str = "span", css: str = "") -> str:
    """``number`` shown in an element that names its JSON path."""
    kind = " num" if isinstance(number, int | float) and not isinstance(number, bool) else ""
    return f'<{tag} class="{css}{kind}" data-key="{escape(key)}">{escape(shown(number))}</{tag}>'


def table(head: list[str], rows: list[str]) -> str:
    if not rows:
        return '<p class="empty">None yet.</p>'
    header = "".join(f"<th>{escape(each)}</th>" for each in head)
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def leaves(found: Any, key: str) -> Iterator[tuple[str, str, Any]]:
    """(label, JSON path, value) of every number or text in a nested document (a quality report, metrics...)."""
    if isinstance(found, dict):
        for name, inner in found.items():
            for label, path, leaf in leaves(inner, f"{key}.{name}"):
                yield (f"{name}.{label}" if label else str(name)), path, leaf
    elif isinstance(found, list) and all(isinstance(each, int | float) or each is None for each in found):
        yield "", key, found
    elif isinstance(found, list):
        for index, inner in enumerate(found):
            for label, path, leaf in leaves(inner, f"{key}.{index}"):
                yield f"{index}.{label}" if label else str(index), path, leaf
    else:
        yield "", key, found


def flat(found: Any, key: str) -> str:
    """A nested document as a definition list, each leaf under its path; lists of numbers (intervals) in brackets."""
    rows = []
    for label, path, leaf in leaves(found, key):
        if isinstance(leaf, list):
            inner = ", ".join(value(each, f"{path}.{index}") for index, each in enumerate(leaf))
            rows.append(f"<dt>{escape(label)}</dt><dd>[{inner}]</dd>")
        else:
            rows.append(f"<dt>{escape(label)}</dt><dd>{value(leaf, path)}</dd>")
    return f'<dl class="flat">{"".join(rows)}</dl>' if rows else f'<span class="muted">{MISSING}</span>'


def estimate(found: dict[str, Any] | None, key: str) -> str:
    """``{"value", "ci": [low, high]}`` as ``value [low, high]``."""
    if not found:
        return MISSING
    ci = found.get("ci")
    interval = (f' <span class="muted">[{value(ci[0], f"{key}.ci.0")}, {value(ci[1], f"{key}.ci.1")}]</span>'
                if isinstance(ci, list) and len(ci) == 2 else "")
    return value(found.get("value"), f"{key}.value") + interval


def tiles(items: list[tuple[str, Any, str]]) -> str:
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><div class="label">{escape(label)}</div>{value(number, key, "div", "value")}</div>'
        for label, number, key in items) + "</div>"


def overview(numbers: dict[str, Any]) -> str:
    days = numbers["days"]
    if not days:
        return '<p class="empty">No daily figures yet: run `tailored monitor daily` once a day is over.</p>'
    last = len(days) - 1
    head = tiles([(f"{LABELS[key]} ({days[last]['day']})", days[last][key], f"days.{last}.{key}")
                  for key in ("impressions", "click_rate", "conversion", "revenue", "average_basket", "sales_share")]
                 + [(f"Total {key}", numbers["totals"][key], f"totals.{key}") for key in ("impressions", "revenue")])
    labels = [row["day"] for row in days]

    def chart(title: str, keys: tuple[str, ...]) -> str:
        return line_chart(title, labels, {LABELS[key]: [row[key] for row in days] for key in keys})

    charts = "".join([chart("Impressions and lists", ("impressions", "lists")),
                      chart("Click rate and conversion", ("click_rate", "conversion")),
                      chart("Revenue", ("revenue",)), chart("Average basket", ("average_basket",)),
                      chart("Exposure", ("coverage", "exposure_gini", "long_tail_share", "new_item_share")),
                      chart("Latency (ms)", ("latency_p50_ms", "latency_p99_ms"))])
    keys = (*BUSINESS, *EXPOSURE)
    rows = [f"<tr><td>{escape(row['day'])}</td>" + "".join(value(row[key], f"days.{index}.{key}", "td")
                                                           for key in keys) + "</tr>"
            for index, row in reversed(list(enumerate(days)))]
    return f'{head}<div class="grid">{charts}</div><h3>Per day</h3>{table(["Day", *(LABELS[k] for k in keys)], rows)}'


def models(numbers: dict[str, Any]) -> str:
    versions = [f"<tr><td>{escape(row['name'])}</td><td>{escape(row['version'])}</td>"
                f"<td>{escape(str(row['algorithm']))}</td><td>{escape(str(row['created']))}</td>"
                f"<td>{escape(row['stages'] or '')}</td><td>{escape(str(row['data'] or MISSING))}</td>"
                f"<td>{flat(row['metrics'] or {}, f'versions.{index}.metrics')}</td></tr>"
                for index, row in enumerate(numbers["versions"])]
    history = [f"<tr><td>{escape(name)}</td><td>{escape(stage)}</td><td>{escape(' → '.join(pointers))}</td></tr>"
               for name, stages in numbers["stages"].items() for stage, pointers in stages.items()]
    changes = [f"<tr><td>{escape(when(row['at']))}</td><td>{escape(row['name'])}</td><td>{escape(row['stage'])}</td>"
               f"<td>{escape(row['action'])}</td><td>{escape(str(row['previous'] or MISSING))}</td>"
               f"<td>{escape(row['version'])}</td><td>{escape(str(row['by']))}</td><td>{escape(row['reason'])}</td></tr>"
               for row in numbers["changes"]]
    trainings = numbers["trainings"]
    rows = [f"<tr><td>{escape(when(row['at']))}</td><td>{escape(str(row['model']))}</td>"
            f"<td>{escape(str(row['fingerprint']))[:16]}</td>"
            f"<td>{flat(row['evaluation'] or {}, f'trainings.{index}.evaluation')}</td>"
            f"<td>{flat(row['diff'] or {}, f'trainings.{index}.diff')}</td></tr>"
            for index, row in reversed(list(enumerate(trainings)))]
    metrics = sorted({name for row in trainings for name in (row["evaluation"] or {})})
    chart = line_chart("Evaluation at each training", [when(row["at"]) for row in trainings],
                       {name: [((row["evaluation"] or {}).get(name) or {}).get("value") for row in trainings]
                        for name in metrics}) if trainings else ""
    where = (f'<p class="muted">Registry {escape(numbers["registry"])}</p>' if numbers["registry"]
             else '<p class="muted">No registry: start the service with --registry (or give the report '
                  '--registry) to list versions.</p>')
    loop = [f"<tr><td>{escape(when(row['at']))}</td><td>{escape(row['step'])}</td><td>{escape(row['model'])}</td>"
            f"<td>{flat(row['detail'] or {}, f'loop.{index}.detail')}</td></tr>"
            for index, row in enumerate(numbers["loop"])]
    return (f"{where}<h3>Versions</h3>"
            f"{table(['Name', 'Version', 'Algorithm', 'Created', 'Stages', 'Data', 'Metrics'], versions)}"
            f"<h3>Promotions and rollbacks</h3><p class=\"muted\">Newest first: who changed a stage, and why.</p>"
            f"{table(['At', 'Name', 'Stage', 'Action', 'From', 'To', 'By', 'Reason'], changes)}"
            f"<h3>Stage pointers</h3><p class=\"muted\">Each stage's history, oldest first (a rollback removes the "
            f"last promotion).</p>{table(['Name', 'Stage', 'Versions'], history)}"
            f"<h3>Trainings</h3>{chart}{table(['At', 'Model', 'Data', 'Evaluation', 'Change'], rows)}"
            f"<h3>The improvement loop</h3><p class=\"muted\">Its latest steps, newest first (`tailored loop`).</p>"
            f"{table(['At', 'Step', 'Model', 'Detail'], loop)}")


def experiments(numbers: dict[str, Any]) -> str:
    computed = numbers.get("as_of", False)  # absent in the static report: computed for it
    if computed is None:
        return (f'<p class="error">The experiments\' status could not be computed: {escape(numbers["error"])}</p>'
                if numbers.get("error") else '<p class="empty">The experiments\' status is being computed (it reads '
                'the whole exposure log: tens of seconds at a million impressions); reload in a moment.</p>')
    if not numbers["experiments"]:
        return '<p class="empty">No experiments: start one with `tailored experiments create`.</p>'
    parts = [f'<p class="muted">Status as of {escape(when(computed))}, recomputed in the background every '
             f"{EXPERIMENTS_REFRESH_SECONDS / 60:g} minutes.</p>"] if computed else []
    for index, experiment in enumerate(numbers["experiments"]):
        key, result = f"experiments.{index}", experiment["result"]
        shares = {arm["name"]: arm for arm in experiment["arms"]}
        metric_names = [name for name, entry in next(iter(result["arms"].values()), {}).items()
                        if isinstance(entry, dict) and "value" in entry]
        arms = []
        for arm, entry in result["arms"].items():
            place = f"{key}.result.arms.{arm}"
            arms.append(f"<tr><td>{escape(arm)}</td><td>{escape(shares.get(arm, {}).get('ref', ''))}</td>"
                        f"<td class=\"num\">{escape(shown(shares.get(arm, {}).get('share')))}%</td>"
                        + value(entry.get("users"), f"{place}.users", "td")
                        + value(entry.get("exposures"), f"{place}.exposures", "td")
                        + "".join(f"<td>{estimate(entry.get(name), f'{place}.{name}')}</td>" for name in metric_names)
                        + value(entry.get("p99_ms"), f"{place}.p99_ms", "td") + "</tr>")
        lifts = [f"<tr><td>{escape(arm)}</td><td>{escape(name)}</td>"
                 f"<td>{estimate(entry, f'{key}.result.lift.{arm}.{name}')}</td>"
                 f"{value(entry.get('p_value'), f'{key}.result.lift.{arm}.{name}.p_value', 'td')}</tr>"
                 for arm, by_metric in result.get("lift", {}).items() for name, entry in by_metric.items()]
        primary = experiment["metric"]
        bars = bar_chart(f"{primary} per arm", {arm: (entry.get(primary) or {}).get("value")
                                                for arm, entry in result["arms"].items()}) if primary else ""
        guardrails = "".join(f"<li>{escape(rail['guardrail'])}: "
                             f"{escape(', '.join(rail['breached_by']) or 'held')}</li>"
                             for rail in result.get("guardrails", []))
        parts.append(
            f'<div class="card"><h3>{escape(experiment["name"])} <span class="badge {escape(experiment["status"])}">'
            f'{escape(experiment["status"])}</span></h3><p>Surface {escape(experiment["surface"])}, primary metric '
            f'{escape(str(primary))}, started {escape(when(experiment["created_at"]))}'
            + (f', stopped {escape(when(experiment["stopped_at"]))} ({escape(str(experiment["stop_reason"]))})'
               if experiment["stopped_at"] else "")
            + f'.</p><p>Decision: {value(result.get("decision"), f"{key}.result.decision", "span", "decision")}; '
            f'users needed: {value(result.get("needed_users"), f"{key}.result.needed_users")}; sample-ratio p-value: '
            f'{value(result.get("srm_p_value"), f"{key}.result.srm_p_value")}</p>'
            + (f"<ul>{guardrails}</ul>" if guardrails else "")
            + table(["Arm", "Model", "Share", "Users", "Lists", *metric_names, "p99 ms"], arms)
            + "<h3>Lift over the control (95 % interval, always-valid p-value)</h3>"
            + table(["Arm", "Metric", "Lift", "p-value"], lifts) + bars + "</div>")
    return "".join(parts)


def bias(numbers: dict[str, Any]) -> str:
    groups = numbers["groups"]
    if not groups:
        return ('<p class="empty">No groups yet: users need a `segment` and items a `category` attribute '
                '(PUT /v1/users, /v1/items), and `tailored monitor daily` must have run.</p>')
    parts = []
    for kind in sorted({group["kind"] for group in groups}):
        chosen = [(index, group) for index, group in enumerate(groups) if group["kind"] == kind]
        labels = sorted({day["day"] for _, group in chosen for day in group["days"]})

        def over_days(metric: str, chosen: list[tuple[int, dict[str, Any]]] = chosen,
                      labels: list[str] = labels) -> dict[str, list[float | None]]:
            return {group["key"]: [{d["day"]: d[metric] for d in group["days"]}.get(day) for day in labels]
                    for _, group in chosen}

        rows = [f"<tr><td>{escape(group['key'])}</td><td>{escape(group['days'][-1]['day'])}</td>"
                + value(group["days"][-1]["exposure_share"], f"groups.{index}.days.{len(group['days']) - 1}"
                        ".exposure_share", "td")
                + value(group["days"][-1]["click_rate"], f"groups.{index}.days.{len(group['days']) - 1}.click_rate",
                        "td") + "</tr>" for index, group in chosen]
        parts.append(f"<h3>Per {escape(kind)}</h3><div class=\"grid\">"
                     f"{line_chart(f'Exposure share per {kind}', labels, over_days('exposure_share'))}"
                     f"{line_chart(f'Click rate per {kind}', labels, over_days('click_rate'))}</div>"
                     f"{table([kind.title(), 'Latest day', 'Exposure share', 'Click rate'], rows)}")
    return "".join(parts)


def quality(numbers: dict[str, Any]) -> str:
    drift = numbers["drift"]
    chart = line_chart("Drift against the previous 7 days (PSI)", [row["day"] for row in drift],
                       {LABELS[key]: [row[key] for row in drift] for key in DRIFT}) if drift else ""
    rows = [f"<tr><td>{escape(row['day'])}</td>" + "".join(value(row[key], f"drift.{index}.{key}", "td")
                                                           for key in DRIFT) + "</tr>"
            for index, row in reversed(list(enumerate(drift)))]
    trainings = [f"<tr><td>{escape(when(row['at']))}</td><td>{escape(str(row['model']))}</td>"
                 f"<td>{flat(row['quality'] or {}, f'trainings.{index}.quality')}</td>"
                 f"<td>{flat(row['bias'] or {}, f'trainings.{index}.bias')}</td></tr>"
                 for index, row in reversed(list(enumerate(numbers["trainings"])))]
    return (f"<h3>Training data</h3>{table(['At', 'Model', 'Quality', 'Bias in the data'], trainings)}"
            f"<h3>Drift</h3><p class=\"muted\">PSI under 0.1: stable; 0.1 to 0.25: moderate; above 0.25: "
            f"large.</p>{chart}{table(['Day', *(LABELS[key] for key in DRIFT)], rows)}")


def alerts(numbers: dict[str, Any]) -> str:
    found = numbers["alerts"]
    counts = {level: sum(row["severity"] == level for row in found) for level in ("critical", "warning")}
    rows = [f"<tr><td>{escape(when(row['at']))}</td><td>{escape(str(row['day']))}</td>"
            f"<td>{value(row['rule'], f'alerts.{index}.rule')}</td><td><span class=\"badge "
            f"{escape(row['severity'])}\">{escape(row['severity'])}</span></td>"
            f"<td>{value(row['message'], f'alerts.{index}.message')}</td>"
            + value(row.get("value"), f"alerts.{index}.value", "td") + "</tr>" for index, row in enumerate(found)]
    summary = "".join(f'<div class="tile"><div class="label">{level}</div><div class="value">{count:,}</div></div>'
                      for level, count in counts.items())
    return f'<div class="tiles">{summary}</div>{table(["At", "Day", "Rule", "Severity", "Message", "Value"], rows)}'


BODIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "overview": overview, "models": models, "experiments": experiments, "bias": bias, "quality": quality,
    "alerts": alerts}


def document(title: str, header: str, main: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title><style>{CSS}</style></head>'
            f"<body><header>{header}</header><main>{main}</main></body></html>")


def shell(page: str, numbers: dict[str, Any], since: str | None = None) -> str:
    """One page of the service's dashboard: the navigation (keeping ``since``), a form to choose the first day shown
    (a plain GET: no script), a sign-out button."""
    here, query = ' class="here"', f"?since={quote(since)}" if since else ""
    links = "".join(f'<a href="/dashboard/{name}{query}"{here if name == page else ""}>{escape(title)}</a>'
                    for name, title in PAGES.items())
    header = (f"<h1>tailored {escape(__version__)}</h1><nav>{links}</nav>"
              f'<form method="get" action="/dashboard/{page}"><label>From <input type="date" name="since" '
              f'value="{escape(since or "")}"></label> <button type="submit">Show</button></form>'
              '<form method="post" action="/dashboard/sign-out"><button type="submit">Sign out</button></form>')
    return document(f"{PAGES[page]} · tailored", header,
                    f'<section class="page" data-page="{page}"><h2>{escape(PAGES[page])}</h2>'
                    f"{BODIES[page](numbers)}</section>")


def report(pages: dict[str, dict[str, Any]], generated_at: float) -> str:
    """Every page in one static file (`tailored monitor report`), the navigation as anchors."""
    links = "".join(f'<a href="#{name}">{escape(PAGES[name])}</a>' for name in pages)
    sections = "".join(f'<section class="page" id="{name}" data-page="{name}"><h2>{escape(PAGES[name])}</h2>'
                       f"{BODIES[name](numbers)}</section>" for name, numbers in pages.items())
    return document("tailored report", f"<h1>tailored report · {escape(when(generated_at))}</h1><nav>{links}</nav>",
                    sections)


def sign_in(message: str = "") -> str:
    """The sign-in form: an API key with the admin scope, posted to /dashboard/sign-in."""
    error = f'<p class="error">{escape(message)}</p>' if message else ""
    form = ('<form class="sign-in card" method="post" action="/dashboard/sign-in"><h2>Sign in</h2>'
            f'{error}<label for="key">API key with the admin scope</label>'
            '<input id="key" name="key" type="password" autocomplete="off" required>'
            '<button type="submit">Sign in</button><p class="muted">Create one with `tailored keys create --scopes '
            'admin`. The session lasts 8 hours, or until the key is revoked.</p></form>')
    return document("Sign in · tailored", f"<h1>tailored {escape(__version__)}</h1>", form)
