"""One self-contained HTML file per report: verdict first, tables, inline SVG plots.

``html_report(data)`` takes a report's ``to_dict()`` (validation or evaluation) and returns the
page: no scripts, no external fonts, styles or images, so it opens offline, in any browser, and
prints on A4/Letter. Plots need matplotlib (the ``report`` extra); without it the page says so
in one line where the plots would be (:data:`~.plots.MISSING`), and everything else is there.
"""

from __future__ import annotations

import html
import math
import sys

from . import plots

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
.verdict{font-size:1.3rem;font-weight:700;padding:.5rem .8rem;border-radius:4px;display:inline-block}
.pass{background:#e3f4e4;color:#17612a}.neutral{background:#eef1f8}.fail{background:#fbe4e4;color:#9b1c1c}
table{border-collapse:collapse;margin:.6rem 0;font-size:13px}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f4f4f4;padding:0 .2rem}.rule{background:#f7f7fb;border-left:3px solid #4c72b0;padding:.4rem .7rem}
figure.plot{display:inline-block;margin:.4rem .6rem .4rem 0}figure.plot svg{max-width:100%;height:auto}
.note{color:#8a5a00}.muted{color:#666;font-size:12px}
@media print{body{max-width:none;margin:0}figure.plot,table{page-break-inside:avoid}}
"""

_warned = False


def _e(value) -> str:
    return html.escape(str(value))


def _num(value, fmt: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, fmt) if isinstance(value, (int, float)) else _e(value)


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i >= numeric_from else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(make, *args) -> str:
    """One plot as a <figure>, or the one-line note when matplotlib is missing."""
    global _warned
    try:
        return f'<figure class="plot">{make(*args)}</figure>'
    except plots.MissingDependencyError:
        if not _warned:
            print(f"note: {plots.MISSING}", file=sys.stderr)
            _warned = True
        return f'<p class="note">{_e(plots.MISSING)}</p>'


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def html_report(data: dict) -> str:
    """The HTML page of a validation or evaluation report (its ``to_dict()``)."""
    if data.get("kind") == "evaluation":
        return _page(f"Evaluation: {data['task']}", _evaluation(data))
    if "results" in data and "backends" in data:  # a benchmark (BenchResult.to_dict())
        return _page("Benchmark", _benchmark(data))
    return _page(f"Validation: {data['task']}", _validation(data))


# ------------------------------------------------------------------------------ validation
def _validation(d: dict) -> str:
    verdict = "PASS" if d["passed"] else "FAIL"
    parts = [
        f"<h1>Validation: {_e(d['task'])}</h1>",
        f'<p class="verdict {verdict.lower()}">{verdict}</p>',
        '<p class="rule">A value passes when <code>|export &minus; reference| &le; atol + rtol &middot; |reference|</code> '
        "(numpy.allclose's rule, per element); the export passes when every value of every output does, "
        "no value is NaN or infinite, and the task-level thresholds hold.</p>",
    ]
    if d["failures"]:
        parts.append("<h2>Failures</h2><ul>" + "".join(f"<li>{_e(f)}</li>" for f in d["failures"]) + "</ul>")
    parts.append(
        "<ul>"
        f"<li>export: <code>{_e(d['export_dir'])}</code></li>"
        f"<li>backend: {_e(d['provider'])}; reference: reference_model (PyTorch, fp32)</li>"
        f"<li>precision: {_e(d['precision'])}; padding: {_e(d['padding'])}; dynamic convolution: {_e(d['dynamic_conv'])}</li>"
        f"<li>cases: {len(d['cases'])}; time {d['elapsed_s']:.1f} s</li></ul>"
    )
    parts.append("<h2>Outputs</h2>")
    rows = []
    for o in d["outputs"]:
        err = o.get("error") or {}
        rows.append([
            f"<code>{_e(o['name'])}</code>", _num(o["max_abs"]), _num(o["max_rel"]),
            _num(err.get("mean")), _num(err.get("p50")), _num(err.get("p90")), _num(err.get("p99")),
            f"{o['atol']:g} / {o['rtol']:g}", f"{o['violations']} of {o['elements']}",
            _num(o.get("min_atol")), "pass" if o["passed"] else "<b>FAIL</b>",
        ])
    parts.append(_table(["output", "max abs", "max rel", "mean abs", "p50", "p90", "p99", "atol / rtol", "outside",
                         "atol to pass", "result"], rows))
    if any("error" in o for o in d["outputs"]):
        parts.append('<p class="muted">Percentiles come from a log-spaced histogram of the absolute errors '
                     "(20 bins per decade, so within about 6%); mean and maximum are exact. "
                     '"atol to pass": the smallest atol that passes every value at this rtol.</p>')
    for o in d["outputs"]:
        parts.append(_output_details(o))
    parts.append("<h2>Task agreement</h2>" + f"<p>{_e(_agreement(d['agreement']))}</p>")
    effect = d.get("padding_effect") or {}
    if "export_max_abs_diff" in effect:
        parts.append(
            "<h2>Padding effect</h2>"
            f"<p>A {effect['text_tokens']}-token text alone vs padded to {effect['padded_to']}: max abs diff "
            f"<b>{_num(effect['export_max_abs_diff'])}</b> for this export, {_num(effect['transformers_semantics_max_abs_diff'])} "
            "under transformers' semantics (its convolution branch reads padding)."
            + (f" {_e(effect['note'])}." if effect.get("note") else "") + "</p>"
        )
    if d.get("replay"):
        parts.append(f"<h2>Replay</h2><p>{_e(d['replay'])}</p>")
    env = ", ".join(f"{k} {v}" for k, v in (d.get("environment") or {}).items())
    parts.append(f'<p class="muted">{_e(env)}</p>')
    return "\n".join(parts)


def _output_details(o: dict) -> str:
    err = o.get("error")
    if not err:
        return ""
    parts = [f"<h2>Output <code>{_e(o['name'])}</code></h2>"]
    where = o.get("worst") or {}
    if where:
        parts.append(
            f"<p>Largest difference in case <code>{_e(o.get('worst_case', ''))}</code> at index "
            f"<code>{_e(tuple(where.get('index', ())))}</code>: export {_num(where.get('got'), '.7g')}, "
            f"reference {_num(where.get('ref'), '.7g')}.</p>"
        )
    values = o.get("values") or {}
    if values:
        rows = [[name, _num(v.get("min")), _num(v.get("max")), _num(v.get("mean")), _num(v.get("std"))]
                for name, v in values.items()]
        parts.append(_table(["values", "min", "max", "mean", "std"], rows))
    if err["counts"]:
        parts.append(_figure(plots.error_histogram, err["edges"], err["counts"], err.get("zeros", 0), o["atol"],
                             f"{o['name']}: absolute error"))
    else:  # nothing compared, or every value equal: no histogram to draw
        parts.append(f"<p>No nonzero difference to plot ({o['elements']} values compared, {err.get('zeros', 0)} equal).</p>")
    if o.get("by_length"):
        parts.append(_figure(plots.error_by_length, o["by_length"], o["atol"], f"{o['name']}: error vs length"))
    return "\n".join(parts)


def _agreement(a: dict) -> str:
    if a.get("nonfinite_cases"):
        from .validation import _agreement_text

        return _agreement_text(a)
    from .validation import agreement_kind, agreement_label

    if agreement_kind(a) == "similarity":
        return f"{agreement_label(a)} min {a['value']:.7f} (mean {a.get('mean', float('nan')):.7f})"
    label = agreement_label(a)
    value = a["value"]
    rate = f"{value:.2%}" if isinstance(value, float) and math.isfinite(value) else "n/a"
    return f"{label} agreement {a.get('agree', 0)}/{a.get('total', 0)} ({rate})"


# ------------------------------------------------------------------------------ evaluation
def _evaluation(d: dict) -> str:
    from .evaluation import metric_rows

    primary = d["primary_metric"]
    ref = d["models"][0]
    variants = d["models"][1:]
    worst = min((m["delta"].get(primary, 0.0) or 0.0 for m in variants), default=0.0)
    parts = [
        f"<h1>Evaluation: {_e(d['task'])}</h1>",
        f'<p class="verdict neutral">{_e(primary)}: reference {_num(ref["metrics"].get(primary), ".4f")}; '
        f"largest drop {_num(worst, '+.4f')}</p>",
        f"<p>Data <code>{_e(d['data'])}</code>: {d['examples']} examples, {len(d['bad_rows'])} bad rows skipped. "
        f"Brackets: {d['settings']['confidence']:.0%} bootstrap percentile intervals over {d['settings']['resamples']} "
        "resamples of the examples; deltas resample the reference and the variant together (paired).</p>",
    ]
    headers, rows = metric_rows(d)
    parts.append(_table(headers, [[_e(c) for c in r] for r in rows], numeric_from=2))
    metrics = list(ref["metrics"])
    if variants:
        parts.append(_figure(
            plots.delta_bars, [m["name"] for m in variants], metrics,
            {m["name"]: m["delta"] for m in variants}, {m["name"]: m["delta_intervals"] for m in variants},
            "metric difference to the reference"))
    for m in variants:
        parts.append(f"<h2>{_e(m['name'])}: {m['disagreements']} of {d['examples']} predictions differ from the reference</h2>")
        parts.append(f'<p class="muted">{_e(m["path"])}; {m["wall_s"]:.2f} s'
                     + (f", {m['examples_per_s']:.1f} examples/s" if m.get("examples_per_s") else "") + "</p>")
        if m["worst"]:
            parts.append(_table(["line", "text", "reference", "this model"],
                                [[str(w["line"]), _e(w["text"]), _e(w["reference"]), _e(w["prediction"])] for w in m["worst"]],
                                numeric_from=99))
        if m["errors"]:
            parts.append("<p>Failed examples (counted as wrong):</p><ul>"
                         + "".join(f"<li>line {e['line']}: {_e(e['error'])}</li>" for e in m["errors"][:20]) + "</ul>")
    if d["bad_rows"]:
        parts.append("<h2>Bad rows (skipped)</h2><ul>"
                     + "".join(f"<li>line {b['line']}: {_e(b['reason'])}</li>" for b in d["bad_rows"]) + "</ul>")
    parts.append(f'<p class="muted">{d["elapsed_s"]:.1f} s; ' + _e(", ".join(f"{k} {v}" for k, v in d["environment"].items())) + "</p>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------- benchmark
def _benchmark(d: dict) -> str:
    parts = ["<h1>Benchmark</h1>",
             '<p class="rule">Latency of one call at each batch size and sequence length (p50 of the timed, '
             "interleaved repeats); lower is better.</p>"]
    for sequence in sorted({r["sequence"] for r in d["results"]}):
        series: dict = {}
        for r in d["results"]:
            if r["sequence"] == sequence:
                series.setdefault(r["backend"], []).append((r["batch"], r["p50_ms"]))
        parts.append(_figure(plots.latency_by_batch, series, f"sequence {sequence}: latency vs batch size"))
    rows = [[_e(r["backend"]), str(r["batch"]), str(r["sequence"]), _num(r["p50_ms"], ".2f"), _num(r["p90_ms"], ".2f"),
             _num(r["p99_ms"], ".2f"), _num(r["throughput_seq_per_s"], ".1f"),
             f"{r['speedup_vs_reference']:.2f}x" if r.get("speedup_vs_reference") else "-"] for r in d["results"]]
    parts.append(_table(["backend", "batch", "sequence", "p50 ms", "p90 ms", "p99 ms", "seq/s", "vs reference"], rows))
    parts += [f'<p class="note">{_e(note)}</p>' for note in d.get("notes", [])]
    machine = ", ".join(f"{k} {v}" for k, v in (d.get("machine") or {}).items())
    parts.append(f'<p class="muted">{_e(machine)}; {d.get("elapsed_s", 0):.1f} s</p>')
    return "\n".join(parts)
