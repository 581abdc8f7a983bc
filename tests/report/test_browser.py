"""The reports in a real headless Chromium: they load without console errors and every plot
renders to a non-blank image. Skipped (with the reason) when no Chromium is installed."""

from __future__ import annotations

import io

import numpy as np
import pytest

from .browser import find_browser, open_page

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium); "
                                "set CONVBERT_EXPORT_BROWSER to a Chromium binary")


def _check(page_file, tmp_path, expected_plots):
    from matplotlib import image

    result = open_page(BROWSER, page_file)
    (tmp_path / f"{page_file.stem}.png").write_bytes(result["screenshot"])
    assert result["errors"] == []
    assert len(result["plots"]) == expected_plots
    for plot, png in zip(result["plots"], result["plot_pngs"]):
        assert plot["svg"] and plot["width"] > 100 and plot["height"] > 100 and plot["shapes"] > 10, plot
        pixels = image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] >= 100 and float(np.std(pixels[..., :3])) > 0.01  # drawn, not blank
    assert image.imread(io.BytesIO(result["screenshot"]), format="png").shape[0] > 500


def test_validation_report_renders(validated_export, tmp_path):
    _check(validated_export / "validation.html", tmp_path, expected_plots=2)


def test_evaluation_report_renders(evaluation_dir, tmp_path):
    _check(evaluation_dir / "evaluation.html", tmp_path, expected_plots=1)
