"""validation.html and evaluation.html: self-contained, verdict and rule first, one plot per figure."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from convbert_export.report import html_report


def _self_contained(page: str) -> bool:
    return not re.search(r"(src|href)=[\"']?(https?:|//)", page) and "<script" not in page and "@import" not in page


def test_export_writes_validation_html_beside_json_and_markdown(validated_export):
    page = (validated_export / "validation.html").read_text()
    data = json.loads((validated_export / "validation.json").read_text())
    assert _self_contained(page)
    assert page.index("PASS") < page.index("atol + rtol") < page.index("<h2>Outputs")
    assert page.count("<figure class=\"plot\"><svg") == 2 * len(data["outputs"])  # histogram + error vs length
    assert f"{data['outputs'][0]['error']['mean']:.3g}" in page
    assert "atol + rtol * |reference|" in (validated_export / "validation.md").read_text()


def test_evaluation_html_lists_bad_rows_and_plots_the_deltas(evaluation_dir):
    page = (evaluation_dir / "evaluation.html").read_text()
    assert _self_contained(page) and page.count("<svg") == 1
    assert "line 5: missing field &#x27;label&#x27;" in page


def test_without_matplotlib_the_page_says_so_in_one_line(validated_export):
    code = (
        "import sys, json; sys.modules['matplotlib'] = None\n"
        "from convbert_export.report import html_report\n"
        f"page = html_report(json.load(open({str(validated_export / 'validation.json')!r})))\n"
        "print(page.count('<svg'), 'matplotlib' in page)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["0", "True"], result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'convbert-export[report]'" in lines[0]


def test_report_text_is_escaped():
    data = {"kind": "evaluation", "task": "<b>t</b>", "data": "x", "primary_metric": "accuracy", "examples": 1,
            "bad_rows": [{"line": 1, "reason": "<script>alert(1)</script>"}], "settings": {"confidence": 0.95, "resamples": 0},
            "models": [{"name": "reference", "kind": "reference", "precision": "fp32", "metrics": {"accuracy": 1.0},
                        "intervals": {}, "delta": {}, "delta_intervals": {}, "disagreements": 0, "worst": [],
                        "errors": [], "wall_s": 1.0, "examples_per_s": 1.0, "path": "p"}],
            "elapsed_s": 1.0, "environment": {}}
    page = html_report(data)
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;t&lt;/b&gt;" in page


def test_benchmark_html_plots_latency_against_batch_size(validated_export, tmp_path):
    from convbert_export.cli import main

    page_file = tmp_path / "bench.html"
    code = main(["benchmark", str(validated_export), "--batch", "1,2", "--sequence", "8,16", "--repeats", "3",
                 "--warmup", "0", "--no-floor", "-q", "--html", str(page_file), "--json-out", str(tmp_path / "b.json")])
    assert code == 0
    page, data = page_file.read_text(), json.loads((tmp_path / "b.json").read_text())
    assert _self_contained(page) and page.count("<svg") == 2  # one plot per sequence length
    assert all(f"{r['p50_ms']:.2f}" in page for r in data["results"])


def test_an_output_with_no_differences_has_no_histogram(validated_export):
    data = json.loads((validated_export / "validation.json").read_text())
    data["outputs"][0]["error"].update(edges=[], counts=[], zeros=7)
    data["outputs"][0]["by_length"] = []
    page = html_report(data)
    assert "<svg" not in page and "No nonzero difference to plot" in page
