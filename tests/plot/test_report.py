"""The HTML report: built from a synthetic store, complete, and rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from featstore.report.html import build_report
from tests.plot.synthetic import make_store

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the synthetic store, brain maps included (built once: the slow part)."""
    root = tmp_path_factory.mktemp("report")
    store = make_store(root / "synthetic.zarr")
    return build_report(store, root / "report")


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_has_every_section_figure_and_citation(report):
    page = report.read_text(encoding="utf-8")
    for heading in (
        "Summary",
        "Models, windows and layers",
        "Brain maps",
        "Top 20 ROIs",
        "Fusion",
        "ROI groups",
        "Settings and provenance",
        "References",
    ):
        assert f">{heading}<" in page, heading
    images = _images(page)
    assert len(images) == 16
    assert sorted(images) == sorted(
        p.relative_to(report.parent).as_posix() for p in (report.parent / "figures").iterdir()
    )
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page)
    assert len(captions) == 16
    brain = [c for c in captions if "inflated surface" in c]
    assert len(brain) == 6 and all("Glasser et al., 2016, Nature" in c for c in brain)
    assert "Glasser, M. F., Coalson" in page and "doi:10.1038/nature18933" in page
    assert "grid-test" in page and "test_frac=0.25" in page
    assert "r / ceiling" in page  # noise ceiling beside raw r in the summary
    assert "rank_biserial" in page  # fusion vs best single, paired Wilcoxon
    assert "gpt2/ctx200+wavlm/tr6/9x9" in page


def test_embedded_report_is_one_file(tmp_path):
    store = make_store(tmp_path / "s.zarr")
    index = build_report(store, tmp_path / "out", brain_maps=False, embed=True, top=5)
    page = index.read_text(encoding="utf-8")
    assert all(src.startswith("data:image/png;base64,") for src in _images(page))
    assert len(_images(page)) == 10
    assert not any((tmp_path / "out" / "figures").glob("*.png"))
    assert ">Top 5 ROIs<" in page and ">Brain maps<" not in page


def _custom_atlas_store(tmp_path: Path) -> Path:
    """A store of 40 ROIs named ``parcel0`` … ``parcel39`` (no HCP-MMP1.0 names), one run."""
    from featstore import store as fs
    from tests.plot.synthetic import N_TR, fmri_dataset, results_dataset

    custom = {
        "roi_name": ("roi", np.array([f"parcel{i}" for i in range(40)], dtype=object)),
        "hemisphere": ("roi", np.array([""] * 40, dtype=object)),
    }
    store = tmp_path / "custom.zarr"
    fs.create_store(store, dataset="custom", tr_seconds=1.5, n_tr=N_TR)
    fs.write_group(store, "fmri", fmri_dataset().isel(roi=slice(0, 40)).assign_coords(custom))
    fs.write_group(
        store, "results/run-a", results_dataset().isel(roi=slice(0, 40)).assign_coords(custom)
    )
    return store


def test_custom_atlas_report_leaves_out_brain_maps_and_hcp_groups(tmp_path):
    store = _custom_atlas_store(tmp_path)
    page = build_report(store, tmp_path / "out").read_text(encoding="utf-8")
    assert ">Brain maps<" not in page and ">ROI groups<" not in page
    assert "No ROI group matches these ROI names" in page
    assert ">Top 20 ROIs<" in page and "parcel" in page


def test_configs_without_any_r_are_listed_as_excluded_without_numpy_warnings(tmp_path):
    from featstore import store as fs
    from tests.plot.synthetic import N_TR, fmri_dataset, results_dataset

    results = results_dataset()
    labels = list(results["config"].values)
    # an older run that does not say why; a newer one names the constant layer
    for label in ("wavlm/tr6/layer1", "gpt2/ctx200+wavlm/tr6/4x6"):
        results["r"][labels.index(label)] = np.nan
    results.attrs["excluded"] = {"gpt2/ctx200+wavlm/tr6/4x6": "wavlm/tr6 layer 6 is constant"}
    store = tmp_path / "s.zarr"
    fs.create_store(store, dataset="synthetic", tr_seconds=1.5, n_tr=N_TR)
    fs.write_group(store, "fmri", fmri_dataset())
    fs.write_group(store, "results/run-a", results)
    page = build_report(store, tmp_path / "out", top=5).read_text(encoding="utf-8")
    assert "Excluded: 2 config(s)" in page and "(2 more excluded)" in page
    assert "<td>wavlm/tr6/layer1</td>\n      <td>r is NaN for every subject and ROI</td>" in page
    assert "<td>wavlm/tr6 layer 6 is constant</td>" in page
    assert ">Brain maps<" in page and ">Fusion<" in page


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _loaded_images(index: Path) -> str:
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", index.as_uri()).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    return body.group(0)


@pytest.mark.chromium
@needs_chromium
def test_report_renders_in_headless_chromium_with_every_image(report, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1400,3000", report.as_uri())
    assert shot.exists() and shot.stat().st_size > 50_000
    body = _loaded_images(report)
    assert 'data-images="ok"' in body and 'data-image-count="16"' in body
    # the check can fail: the same page with one figure missing
    broken = report.parent / "broken.html"
    page = report.read_text(encoding="utf-8")
    broken.write_text(page.replace(_images(page)[0], "figures/missing.png"), encoding="utf-8")
    assert 'data-images="failed:1"' in _loaded_images(broken)


def test_names_from_the_store_are_escaped_in_the_page(tmp_path):
    from featstore import store as fs
    from tests.plot.synthetic import N_TR, fmri_dataset, results_dataset

    hostile = "<script>alert(1)</script>"
    names = np.array([hostile] + [f"parcel{i}" for i in range(1, 40)], dtype=object)
    custom = {"roi_name": ("roi", names), "hemisphere": ("roi", np.array([""] * 40, dtype=object))}
    results = results_dataset().isel(roi=slice(0, 40)).assign_coords(custom)
    results.attrs["note"] = hostile
    store = tmp_path / "hostile.zarr"
    fs.create_store(store, dataset=hostile, tr_seconds=1.5, n_tr=N_TR)
    fs.write_group(store, "fmri", fmri_dataset().isel(roi=slice(0, 40)).assign_coords(custom))
    fs.write_group(store, "results/run-a", results)
    index = build_report(store, tmp_path / "out", top=40, groups={hostile: [hostile]})
    page = index.read_text(encoding="utf-8")
    assert page.count("<script>") == 1  # the page's own image check
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # title, heading, ROI tables, the ROI-group caption, the run's provenance
    assert page.count(escaped) >= 6
    assert f"<title>featstore report: {escaped}</title>" in page
    assert f"{escaped} = {escaped}" in page


def test_a_users_group_that_matches_no_roi_is_warned_not_dropped_silently(tmp_path):
    from featstore.errors import FeatstoreWarning
    from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS

    store = _custom_atlas_store(tmp_path)
    groups = {**BUILTIN_ROI_GROUPS, "mine": ["parcel1", "parcel2"], "typo": ["parcel1", "parcl2"]}
    with pytest.warns(FeatstoreWarning) as caught:
        index = build_report(store, tmp_path / "out", groups=groups, brain_maps=False)
    assert [str(w.message) for w in caught] == [
        "ROI group 'typo': parcl2 match no ROI of the data (expected HCP-MMP1.0 area names "
        "such as 'A1' or 'L_44'); left out of the report's 'Results'"
    ]
    page = index.read_text(encoding="utf-8")
    assert ">ROI groups<" in page and "mine" in page
