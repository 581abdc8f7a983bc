"""Markdown and terminal renderings of an evaluation (``EvaluationReport.to_dict()``)."""

from __future__ import annotations

from .validation import render_table


def _num(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.4f}"


def _interval(pair) -> str:
    if not pair or pair[0] is None or pair[0] != pair[0]:
        return ""
    return f" [{pair[0]:.3f}, {pair[1]:.3f}]"


def _delta(value) -> str:
    return "n/a" if value is None or value != value else f"{value:+.4f}"


def metric_rows(data: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the metric table: per model each metric with its interval, delta."""
    names = list(data["models"][0]["metrics"])
    headers = ["model", "precision"] + names + [f"delta {data['primary_metric']}", "disagree", "examples/s"]
    rows = []
    for m in data["models"]:
        primary = data["primary_metric"]
        delta = "" if m["kind"] == "reference" else _delta(m["delta"].get(primary)) + _interval(m["delta_intervals"].get(primary))
        rows.append(
            [m["name"], m["precision"]]
            + [_num(m["metrics"].get(k)) + _interval(m["intervals"].get(k)) for k in names]
            + [delta, "" if m["kind"] == "reference" else f"{m['disagreements']}/{data['examples']}",
               f"{m['examples_per_s']:.1f}" if m.get("examples_per_s") else ""]
        )
    return headers, rows


def evaluation_table(data: dict) -> str:
    headers, rows = metric_rows(data)
    text = render_table(headers, rows)
    if data["bad_rows"]:
        text += f"\n{len(data['bad_rows'])} bad rows skipped (first: line {data['bad_rows'][0]['line']}: {data['bad_rows'][0]['reason']})"
    return text


def evaluation_markdown(data: dict) -> str:
    headers, rows = metric_rows(data)
    conf = data["settings"]["confidence"]
    lines = [
        f"# Evaluation: {data['task']}",
        "",
        f"- data: `{data['data']}`: {data['examples']} examples used, {len(data['bad_rows'])} bad rows skipped",
        f"- metrics: {', '.join(data['models'][0]['metrics'])}; brackets: {conf:.0%} bootstrap percentile interval "
        f"({data['settings']['resamples']} resamples of the examples; deltas paired with the reference)",
        f"- time: {data['elapsed_s']:.1f} s",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for m in data["models"][1:]:
        if m["worst"]:
            lines += ["", f"## {m['name']}: {m['disagreements']} disagreements with the reference (worst {len(m['worst'])})", "",
                      "| line | text | reference | this model |", "|---|---|---|---|"]
            lines += [f"| {w['line']} | {_cell(w['text'])} | {_cell(w['reference'])} | {_cell(w['prediction'])} |" for w in m["worst"]]
        if m["errors"]:
            lines += ["", f"{m['name']}: {len(m['errors'])} examples failed (counted as wrong); first: line "
                      f"{m['errors'][0]['line']}: {m['errors'][0]['error']}"]
    if data["bad_rows"]:
        lines += ["", "## Bad rows (skipped)", ""] + [f"- line {b['line']}: {b['reason']}" for b in data["bad_rows"]]
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 160) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
