"""Every command's report.html in headless Chromium: no console error, every image loaded, no sideways
scroll at a 700 px viewport; a screenshot of each is kept (tmp_path, and test-artifacts/ when
SELFPRUNE_ARTIFACTS is set). Planted faults (a broken image, a too-wide element) must be caught.

Chromium and chromedriver come from ``scripts/get-chromium.sh`` (``make browser``). Without them these
tests fail; ``SELFPRUNE_NO_BROWSER=1`` skips them instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from selfprune.cli import main

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
WIDTH = 700


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if os.environ.get("SELFPRUNE_NO_BROWSER") == "1":
        pytest.skip("SELFPRUNE_NO_BROWSER=1: the headless-browser checks of report.html are switched off")
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run scripts/get-chromium.sh (or SELFPRUNE_NO_BROWSER=1)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install 'selenium>=4' (the dev extra has it)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def check_page(driver, page: Path, shot: Path) -> list[str]:
    """Open ``page`` at a 700 px wide viewport; the problems found (empty = fine). Saves a full-page PNG."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(page.resolve().as_uri())
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all([...document.images].map(i => i.decode().catch(() => null))).then(() => done(true));"
    )
    problems = [f"console {e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    images = driver.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.alt, i.src.slice(0, 40)]);"
    )
    problems += [f"image {alt!r} ({src}...) did not load" for ok, w, alt, src in images if not ok or w == 0]
    scroll, client = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
    )
    if scroll > client:
        problems.append(f"horizontal scroll at {WIDTH} px: scrollWidth {scroll} > clientWidth {client}")
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": min(int(height), 16000), "deviceScaleFactor": 1,
                            "mobile": False})  # fmt: skip
    shot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(shot))
    if os.environ.get("SELFPRUNE_ARTIFACTS"):
        keep = REPO / "test-artifacts"
        keep.mkdir(exist_ok=True)
        shutil.copy(shot, keep / shot.name)
    return problems


def assert_clean(driver, report: Path, tmp_path: Path, name: str, *, images: int) -> str:
    """The report passes :func:`check_page`, holds at least ``images`` embedded pictures and nothing external."""
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text and "<link" not in text
    assert "src='http" not in text and 'src="http' not in text and "url(" not in text
    assert text.count("src='data:image/png;base64,") >= images
    shot = tmp_path / f"report-{name}.png"
    assert check_page(driver, report, shot) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return text


# ----------------------------------------------------------------------------- the check itself


def _planted(tmp_path: Path, extra: str) -> Path:
    from selfprune.report.html import Page, Section, Verdict, render

    html = render(Page("planted", Verdict("a page with a planted fault"), [Section("s", ["text"])]))
    path = tmp_path / "planted.html"
    path.write_text(html.replace("</main>", extra + "</main>"), encoding="utf-8")
    return path


def test_check_catches_a_broken_image(driver, tmp_path):
    problems = check_page(driver, _planted(tmp_path, "<img src='missing.png' alt='gone'>"), tmp_path / "broken.png")
    assert any("'gone'" in p and "did not load" in p for p in problems), problems
    assert any(p.startswith("console") for p in problems), problems


def test_check_catches_a_too_wide_element(driver, tmp_path):
    problems = check_page(driver, _planted(tmp_path, "<div style='width:1400px'>wide</div>"), tmp_path / "wide.png")
    assert any("horizontal scroll" in p for p in problems), problems
    assert check_page(driver, _planted(tmp_path, "<p>fine</p>"), tmp_path / "fine.png") == []


def test_a_long_table_and_long_words_stay_inside_700_px(driver, tmp_path):
    from selfprune.report.html import Gallery, Page, Section, Table, Tile, Verdict, render

    wide = Table([f"column {i}" for i in range(30)], [[f"value-{i}-{j}" for i in range(30)] for j in range(5)])
    word = "x" * 400
    page = Page("wide content " + word, Verdict(word, "warn", "1.0"), [Section(word, [
        word, wide, Gallery("text", [Tile(word, text=word)]), Gallery("images", [Tile("a", image=np.eye(50))])])],
        {"command": word})  # fmt: skip
    path = tmp_path / "report.html"
    path.write_text(render(page), encoding="utf-8")
    assert check_page(driver, path, tmp_path / "report-wide.png") == []


# ----------------------------------------------------------------------------- every command's report


def _digits_scores(root: Path) -> tuple[Path, Path]:
    from selfprune.embed import get_encoder
    from selfprune.embed.run import embed
    from selfprune.io.sources import load_source
    from selfprune.io.tables import write_scores
    from selfprune.metrics import prototypes

    store = embed(load_source("digits"), get_encoder("pixels", dim=16), root / "emb", fit_rows=2000)
    write_scores(root / "scores.parquet", prototypes(store, k=10, seed=0))
    return root / "emb", root / "scores.parquet"


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    return _digits_scores(tmp_path_factory.mktemp("digits"))


def test_demo_report(driver, tmp_path):
    from selfprune.demo import DemoConfig, run_demo

    cfg = DemoConfig(data="digits", encoder="pixels", k=10, keeps=(0.5,), n_seeds=2, trainer="linear", jobs=1)
    result = run_demo(cfg, tmp_path / "demo")
    assert result.report_path == tmp_path / "demo" / "report.html"
    text = assert_clean(driver, result.report_path, tmp_path, "demo", images=3 + 3 * 12)
    lf = next(r for r in result.summary if r["policy"].startswith("labelfree"))
    assert f"{100 * lf['delta_vs_random']:+.2f} points" in text  # the headline number is the run's own
    assert text.index("class='verdict") < text.index("Pruned vs random") < text.index("Provenance")
    for part in ("Data map", "hardest by labelfree-el2n", "easiest by prototypes", "most typical", "kept share"):
        assert part in text


def test_curve_report(driver, digits_files, tmp_path, capsys):
    _, scores = digits_files
    out = tmp_path / "curve"
    assert main(["curve", "--data", "digits", "--scores", str(scores), "--policies", "hard", "--keep", "0.3,1.0",
                 "--n-seeds", "2", "--model", "linear", "--bootstrap", "10", "--out", str(out)]) == 0  # fmt: skip
    assert "report.html" in capsys.readouterr().out
    text = assert_clean(driver, out / "report.html", tmp_path, "curve", images=2)
    rows = json.loads((out / "curve.json").read_text())["rows"]
    assert {r["metric"] for r in rows} == {"random", "prototypes"}
    assert "prototypes/hard at keep 0.3 vs random" in text and "hardest by prototypes" in text
    assert str(scores) in text and "sha256 " in text  # provenance digests the score file


def test_audit_report(driver, digits_files, tmp_path):
    emb, scores = digits_files
    out = tmp_path / "audit"
    assert main(["audit", "--embeddings", str(emb), "--scores", str(scores), "--data", "digits",
                 "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads((out / "audit.json").read_text())
    text = assert_clean(driver, out / "report.html", tmp_path, "audit", images=3)
    assert f"Verdict: {doc['verdict']}" in text and "null: input norm" in text
    assert "src='audit-" not in text and not (out / "audit.html").exists()


def test_dedup_reports(driver, tmp_path):
    from selfprune.io.sources import load_source

    d = load_source("digits")
    x = np.asarray(d.take(np.arange(len(d))), dtype=np.float32).reshape(len(d), -1)
    np.savez(tmp_path / "emb.npz", X=x, ids=d.ids)
    out = tmp_path / "dedup"
    assert main(["dedup", "--embeddings", str(tmp_path / "emb.npz"), "--data", "digits", "--eps", "0.02",
                 "--k", "8", "--out", str(out)]) == 0  # fmt: skip
    removed = pq.read_table(out / "removed.parquet").num_rows
    assert removed > 0
    text = assert_clean(driver, out / "report.html", tmp_path, "dedup", images=3)
    assert f"removed {removed:,} of {len(d):,}" in text and "duplicate group of id" in text
    sweep = tmp_path / "sweep"
    assert main(["dedup", "--embeddings", str(tmp_path / "emb.npz"), "--k", "8", "--eps-sweep",
                 "--eps-grid", "0,0.02,0.1", "--out", str(sweep)]) == 0  # fmt: skip
    assert_clean(driver, sweep / "report.html", tmp_path, "dedup-sweep", images=1)


def test_prune_report_on_images(driver, tmp_path):
    out = tmp_path / "prune"
    assert main(["prune", "--data", "digits", "--keep", "0.5", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    text = assert_clean(driver, out / "report.html", tmp_path, "prune", images=2)
    assert f"kept {summary['n_kept']:,} of {summary['n_total']:,}" in text and "not checked on this data" in text


def _tiny_lm_folder(root: Path) -> Path:
    spec = importlib.util.spec_from_file_location("tokens_fixtures", REPO / "tests" / "tokens" / "conftest.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    fixtures.make_model("float32").save_pretrained(root)
    fixtures.make_tokenizer().save_pretrained(root)
    return root


def test_tokens_report(driver, tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    chains = tmp_path / "chains.jsonl"
    assert main(["tokens-generate", "--out", str(chains), "--n", "2", "--seed", "4",
                 "--min-tokens", "60", "--max-tokens", "80"]) == 0  # fmt: skip
    out = tmp_path / "tokens"
    try:
        assert main(["tokens", "--chains", str(chains), "--model", str(_tiny_lm_folder(tmp_path / "lm")),
                     "--keep", "0.5", "--search", "approx", "--per-step", "8", "--rescore", "0", "--threads", "1",
                     "--unit", "word", "--out", str(out)]) == 0  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    text = assert_clean(driver, out / "report.html", tmp_path, "tokens", images=1)
    assert "Chains pruned to keep 0.5" in text and "answer best kept" in text
