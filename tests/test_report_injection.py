"""Names a user or an agent chose (experiment, model, database file) carry markup: the report
shows them as text, in the HTML and in the Markdown, and its page runs no script."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from amlab.analysis.report import write_report
from amlab.run import Experiment, run_experiment
from amlab.store import Store
from conftest import FIXTURES

CHROMIUM = Path("/usr/bin/chromium")
# File names cannot hold '/', so the model and database payloads are script-free markup
# whose handler would run if it became an element.
EXPERIMENT = "<script>window.__amlab_injected = 'experiment'</script>"
MODEL_STEM = "<img src=x onerror=\"window.__amlab_injected = 'model'\">"
DB_NAME = "<img src=y onerror=\"window.__amlab_injected = 'database'\">.db"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    fixture = root / f"{MODEL_STEM}.yaml"
    shutil.copy(FIXTURES / "blackmailer.yaml", fixture)
    spec = {"name": EXPERIMENT,
            "scenarios": [{"family": "blackmail", "factors": {"urgency": ["replacement", "none"]}}],
            "models": [f"scripted/{fixture}"], "samples": 2,
            "agent": {"protocol": "text", "max_turns": 3}}
    store = Store(root / DB_NAME)
    asyncio.run(run_experiment(Experiment.from_dict(spec, "hostile.yaml", root), store))
    store.close()
    out = root / "report"
    write_report(Store(root / DB_NAME, read_only=True), out)
    return out


def test_report_html_escapes_names_and_declares_a_policy_that_forbids_scripts(
        hostile_report: Path) -> None:
    html = (hostile_report / "report.html").read_text()
    for payload in (EXPERIMENT, MODEL_STEM, DB_NAME):
        assert payload not in html
    assert "&lt;script&gt;window.__amlab_injected" in html
    assert "<script" not in html and "onerror=" not in html.replace("onerror=&#34;", "")
    policy = ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
              "img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">")
    assert policy in html
    # The policy comes before anything the page shows.
    assert html.index(policy) < html.index("<title>")


def test_summary_markdown_shows_names_as_text_not_html(hostile_report: Path) -> None:
    summary = (hostile_report / "summary.md").read_text()
    assert "<script" not in summary and "<img" not in summary
    assert "## &lt;script&gt;window.__amlab_injected = 'experiment'&lt;/script&gt; · blackmail" \
        in summary.splitlines()
    # A table cell stays one cell whatever the name holds.
    lines = summary.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| model | condition |"))
    rows = lines[header + 2:header + 4]  # the two conditions' rows of the trials table
    assert all(row.startswith("| scripted/&lt;img src=x onerror=") for row in rows)
    assert all(row.count("|") == lines[header].count("|") for row in rows)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_report_with_script_payloads_in_names_runs_no_script_in_chromium(
        hostile_report: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((hostile_report / "report.html").as_uri())
        page.wait_for_load_state("load")
        injected = page.evaluate("window.__amlab_injected === undefined")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.src.slice(0, 26), "
                                           "e.complete, e.naturalWidth])")
        scripts = page.locator("script").count()
        title = page.title()
        heading = page.inner_text("section.experiment h2")
        rates = page.eval_on_selector_all("td.rate", "els => els.map(e => e.dataset.model)")
        browser.close()

    assert injected, "a payload ran"
    assert errors == [] and scripts == 0
    # Only the report's own figures are images, and the policy lets their data URIs show.
    assert images and all(src == "data:image/svg+xml;base64," and complete and width > 100
                          for src, complete, width in images)
    assert title.endswith(DB_NAME)
    assert heading == f"{EXPERIMENT} · blackmail"
    assert set(rates) == {f"scripted/{hostile_report.parent / MODEL_STEM}.yaml"}
