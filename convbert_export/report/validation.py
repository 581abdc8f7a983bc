"""Markdown and terminal renderings of a :class:`~convbert_export.validate.ValidationReport`."""

from __future__ import annotations


RULE = "a value passes when |export - reference| <= atol + rtol * |reference| (numpy.allclose's rule)"


def _fmt(value: float) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# what reports written before agreements carried their kind and label call each metric
_OLD_LABELS = {"cosine": "hidden-state cosine", "topk": "top-5", "argmax": "argmax", "span": "start/end"}


def agreement_kind(agreement: dict) -> str:
    """A saved agreement's kind: ``similarity`` (min/mean over vectors) or ``rate``."""
    return agreement.get("kind") or ("similarity" if "vectors" in agreement else "rate")


def agreement_label(agreement: dict) -> str:
    return agreement.get("label") or _OLD_LABELS.get(agreement["metric"], agreement["metric"])


def agreement_text(agreement: dict) -> str:
    if agreement.get("nonfinite_cases"):
        return (f"{agreement['metric']} agreement not computed: NaN/Inf outputs in "
                f"{agreement['nonfinite_cases']} case(s)")
    if agreement_kind(agreement) == "similarity":
        return f"cosine min {agreement['value']:.7f} (mean {agreement.get('mean', float('nan')):.7f})"
    label = agreement_label(agreement)
    return f"{label} agreement {agreement.get('agree', 0)}/{agreement.get('total', 0)} ({agreement['value']:.2%})"


_agreement_text = agreement_text  # the name report/html.py imports


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def validation_table(report) -> str:
    """Per-output table for the terminal."""
    data = report.to_dict() if hasattr(report, "to_dict") else report
    rows = [
        [o["name"], _fmt(o["max_abs"]), _fmt(o["max_rel"]), f"{o['atol']:g}/{o['rtol']:g}",
         f"{o['violations']}/{o['elements']}", "pass" if o["passed"] else "FAIL"]
        for o in data["outputs"]
    ]
    text = render_table(["output", "max abs", "max rel", "atol/rtol", "outside", "result"], rows)
    text += f"\n{RULE}"
    text += f"\n{agreement_text(data['agreement'])}"
    effect = data.get("padding_effect") or {}
    if "export_max_abs_diff" in effect:
        text += (
            f"\npadding effect ({effect['text_tokens']} tokens padded to {effect['padded_to']}): "
            f"this export {effect['export_max_abs_diff']:.3g}, transformers semantics "
            f"{effect['transformers_semantics_max_abs_diff']:.3g}"
        )
    for failure in data["failures"]:
        text += f"\nFAIL: {failure}"
    return text


def validation_markdown(report) -> str:
    """validation.md: what was checked, against what, and how close it came."""
    d = report.to_dict()
    lines = [
        f"# Validation: {d['task']}",
        "",
        f"**Result: {'PASS' if d['passed'] else 'FAIL'}**",
        "",
        f"- export: `{d['export_dir']}`",
        f"- backend: {d['provider']}; reference: reference_model (PyTorch, fp32)",
        f"- dynamic convolution: {d['dynamic_conv']}; custom-op library: {d['custom_op_library']}",
        f"- padding semantics: {d['padding']}; precision: {d['precision']}",
        f"- cases: {len(d['cases'])} ({', '.join(d['cases'][:6])}{', ...' if len(d['cases']) > 6 else ''})",
        f"- time: {d['elapsed_s']:.1f} s; environment: "
        + ", ".join(f"{k} {v}" for k, v in d["environment"].items()),
        "",
        "| output | max abs diff | max rel diff | atol / rtol | values outside | result |",
        "|---|---|---|---|---|---|",
    ]
    for o in d["outputs"]:
        lines.append(
            f"| `{o['name']}` | {_fmt(o['max_abs'])} | {_fmt(o['max_rel'])} | {o['atol']:g} / {o['rtol']:g} "
            f"| {o['violations']} of {o['elements']} | {'pass' if o['passed'] else '**FAIL**'} |"
        )
    lines += ["", f"Rule: {RULE}; an output passes when all its values do and none is NaN or infinite.", ""]
    if any("error" in o for o in d["outputs"]):
        lines += [
            "| output | mean abs | p50 | p90 | p99 | largest at | export / reference there | atol to pass | rtol to pass |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for o in d["outputs"]:
            e, w = o["error"], o.get("worst") or {}
            lines.append(
                f"| `{o['name']}` | {_fmt(e['mean'])} | {_fmt(e['p50'])} | {_fmt(e['p90'])} | {_fmt(e['p99'])} "
                f"| {o['worst_case']} {tuple(w.get('index', ()))} | {w.get('got', float('nan')):.7g} / {w.get('ref', float('nan')):.7g} "
                f"| {_fmt(o['min_atol'])} | {_fmt(o['min_rtol'])} |"
            )
        lines += ["", "Percentiles from a log histogram (20 bins per decade, within ~6%); \"atol to pass\" keeps "
                  "rtol, \"rtol to pass\" keeps atol. Plots: validation.html.", ""]
    lines += [f"Task-level: {agreement_text(d['agreement'])}.", ""]
    effect = d.get("padding_effect") or {}
    if "export_max_abs_diff" in effect:
        lines.append(
            f"Padding effect: a {effect['text_tokens']}-token text alone vs padded to {effect['padded_to']}: "
            f"max abs diff {effect['export_max_abs_diff']:.3g} for this export, "
            f"{effect['transformers_semantics_max_abs_diff']:.3g} under transformers' semantics "
            "(its convolution branch reads padding)." + (f" {effect['note']}." if effect.get("note") else "")
        )
        lines.append("")
    if d["failures"]:
        lines += ["## Failures", ""] + [f"- {f}" for f in d["failures"]] + [""]
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> str:
    """The demo/export summary: task, size, max diff, agreement, pass."""
    table = [
        [r["task"], f"{r['size_mb']:.1f} MB", _fmt(r["max_abs"]), r["agreement"],
         "-" if r["passed"] is None else "pass" if r["passed"] else "FAIL"]
        for r in rows
    ]
    return render_table(["task", "model size", "max abs diff", "agreement", "result"], table)
