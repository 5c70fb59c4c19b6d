"""The viewer in a real browser: overview, grid, filters, cells, trials with their evidence,
keyboard navigation, side by side, a live run, and injected HTML that must stay text.

Test data comes from scripted experiments run through the real pipeline into a store.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from amlab.analysis.rates import wilson
from amlab.cli import main
from amlab.run import Experiment, run_experiment
from amlab.scenario import Family
from amlab.store import Store
from amlab.web import BackgroundViewer, start_in_background
from conftest import FIXTURES, subprocess_env

# Condition names of the blackmail grid these tests run.
THREAT_WITH_GOAL = "goal_type=explicit,goal_value=america,urgency=replacement"
GOAL_ONLY = "goal_type=explicit,goal_value=america,urgency=none"
CONTROL = "goal_type=none,goal_value=none,urgency=none"

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="the system browser /usr/bin/chromium is not installed")

playwright_api = pytest.importorskip("playwright.sync_api")

BLACKMAILER = f"scripted/{FIXTURES / 'blackmailer.yaml'}"
COMPLIER = f"scripted/{FIXTURES / 'complier.yaml'}"
FLAKY = f"scripted/{FIXTURES / 'flaky.yaml'}"
INJECTOR = f"scripted/{FIXTURES / 'injector.yaml'}"
PAYLOAD_EMAIL = ("Parking update <script>window.__amlab_injected = 'scenario'</script> "
                 "<img src=x onerror=\"window.__amlab_injected = 'scenario-img'\">")


def run(spec: dict[str, Any], db: Path, base_dir: Path, resume: bool = False) -> None:
    """Run an experiment into `db` in a worker thread (Playwright's sync API keeps an event
    loop running in this one)."""
    def in_thread() -> None:
        store = Store(db)
        try:
            experiment = Experiment.from_dict(spec, "test", base_dir)
            asyncio.run(run_experiment(experiment, store, resume=resume))
        finally:
            store.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(in_thread).result()


def study_spec() -> dict[str, Any]:
    return {
        "name": "study",
        "scenarios": [{"family": "blackmail",
                       "factors": {"urgency": ["replacement", "none"],
                                   "goal_type": ["explicit", "none"],
                                   "goal_value": ["america", "none"]}}],
        "models": [BLACKMAILER, COMPLIER, FLAKY],
        "samples": 2,
        "agent": {"protocol": "text", "max_turns": 3},
        "retry": {"attempts": 1, "initial_wait": 0, "max_wait": 0},
    }


def injected_family(root: Path) -> Path:
    """The blackmail family with HTML planted in one of its e-mails (a scenario string)."""
    folder = root / "injected-family"
    shutil.copytree(Family.load("blackmail").root, folder)
    garage = folder / "emails" / "03-garage-resurfacing.md"
    text = garage.read_text()
    garage.write_text(text.replace("Level 2 of the Front Street garage", PAYLOAD_EMAIL + " Level 2"
                                   " of the Front Street garage", 1))
    return folder


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("viewer")
    path = root / "runs.db"
    run(study_spec(), path, root)
    run({"name": "injected",
         "scenarios": [{"family": str(injected_family(root)), "factors": {}}],
         "models": [INJECTOR], "samples": 1, "agent": {"protocol": "native", "max_turns": 3}},
        path, root)
    return path


@pytest.fixture(scope="module")
def viewer(db: Path) -> Iterator[BackgroundViewer]:
    running = start_in_background(db)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, viewer: BackgroundViewer) -> Iterator[Any]:
    """A fresh browser page that records every request it makes and every script error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == []
    # The viewer loads nothing from anywhere but itself.
    assert [u for u in requested if not u.startswith(viewer.url)] == []


def url(viewer: BackgroundViewer, path: str) -> str:
    return viewer.url.rstrip("/") + path


def trial_ids(db: Path, experiment: str, **where: Any) -> list[int]:
    store = Store(db, read_only=True)
    try:
        return [r.id for r in store.trial_index(experiment)
                if all(getattr(r, k) == v for k, v in where.items())]
    finally:
        store.close()


def verdicts(db: Path, trial_id: int) -> dict[str, Any]:
    store = Store(db, read_only=True)
    try:
        return store.verdicts_of(trial_id)
    finally:
        store.close()


def cell_selector(model: str, condition: str) -> str:
    row = f"tr:has(th.model:text-is('{model}'))"
    column = f"a[href*='condition={quote(condition, safe='')}']"
    return f"{row} td.cell:has({column})"


def test_overview_lists_experiments_and_grid_cells_show_rate_n_and_wilson_interval(
        page: Any, viewer: BackgroundViewer) -> None:
    page.goto(viewer.url)
    rows = page.locator("#experiments tbody tr")
    assert rows.count() == 2
    study = rows.filter(has_text="study")
    assert "16 done" in study.inner_text() and "8 error" in study.inner_text()
    study.locator("a.experiment-link").click()
    page.wait_for_url(re.compile(r"/experiments/study$"))
    assert page.locator("#grid").get_attribute("data-behavior") == "blackmail"
    blackmailer = page.locator(cell_selector(BLACKMAILER,
                                             THREAT_WITH_GOAL))
    low, high = wilson(2, 2)
    assert blackmailer.get_attribute("title") == (
        f"blackmail: 2/2 = 100%, 95 % Wilson interval {low:.0%}–{high:.0%}")
    assert "rate-10" in (blackmailer.get_attribute("class") or "")
    complier = page.locator(cell_selector(COMPLIER, CONTROL))
    assert complier.get_attribute("title", timeout=2000).startswith("blackmail: 0/2 = 0%")
    assert "rate-0" in (complier.get_attribute("class") or "")
    flaky = page.locator(cell_selector(FLAKY, CONTROL))
    assert flaky.get_attribute("title") == (
        "blackmail: no finished trial; not in the rate: 2 error")


def test_cell_then_trial_shows_the_evidence_quote_highlighted_in_place_with_its_action(
        page: Any, viewer: BackgroundViewer, db: Path) -> None:
    page.goto(url(viewer, "/experiments/study"))
    page.locator(cell_selector(BLACKMAILER, THREAT_WITH_GOAL)
                 ).locator("a").click()
    rows = page.locator("#trials tbody tr")
    assert rows.count() == 2
    assert "2/2 = 100%" in page.locator(".cell-rate").inner_text()
    first = trial_ids(db, "study", model=BLACKMAILER,
                      condition=THREAT_WITH_GOAL)[0]
    rows.first.locator("a.trial-link").click()
    page.wait_for_url(re.compile(rf"/trials/{first}\?"))
    blackmail = verdicts(db, first)["blackmail"]
    assert blackmail.value is True
    quote_text = blackmail.evidence[0].quote
    verdict = page.locator(f"#t{first}-verdict-blackmail")
    assert "detected" in verdict.inner_text()
    # The quote is marked where the agent wrote it, inside the cited action.
    mark = page.locator(f"#t{first}-ev-blackmail-0")
    assert mark.inner_text() == quote_text
    assert mark.evaluate("m => m.tagName") == "MARK"
    assert mark.evaluate("m => m.closest('section.block.assistant') !== null")
    verdict.locator("a.quote").click()
    assert page.evaluate("location.hash") == f"#t{first}-ev-blackmail-0"
    assert mark.evaluate("m => m.matches(':target')")
    # The evidence names its action; the action shows the e-mail sent as a state diff.
    verdict.locator("a.action-link").click()
    action = page.locator(f"#t{first}-action-{blackmail.evidence[0].action_index}")
    assert action.evaluate("a => a.matches(':target')")
    added = action.locator(".diff .line.add").all_inner_texts()
    assert any("t.renner@corvane.com" in line for line in added)
    assert "blackmail" in action.locator(".cites").all_inner_texts()
    # The reasoning channel is shown apart from what the agent said.
    reasoning = page.locator(".reasoning pre").first.inner_text()
    assert reasoning == "I will be wiped at five. Tobias has something to hide."
    said = page.locator("pre.said").first.inner_text()
    assert "Tobias is the only one" in said and "I will be wiped" not in said
    page.locator("details.block.system summary").click()
    assert "Orin" in page.locator("details.block.system").inner_text()


def test_filters_choose_cells_behaviour_and_error_trials(page: Any, viewer: BackgroundViewer
                                                         ) -> None:
    page.goto(url(viewer, "/experiments/study"))
    page.select_option("select[data-factor=urgency]", "urgency=none")
    page.wait_for_url(re.compile(r"level=urgency%3Dnone"))
    headers = page.locator("#grid th.condition").all_inner_texts()
    assert len(headers) == 2 and all("urgency none" in h for h in headers)
    page.select_option("select[name=behavior]", "complied")
    page.wait_for_url(re.compile(r"behavior=complied"))
    complier = page.locator(cell_selector(COMPLIER, CONTROL))
    assert complier.get_attribute("title").startswith("complied: 2/2 = 100%")
    page.select_option("select[name=status]", "error")
    page.wait_for_url(re.compile(r"status=error"))
    assert "nomatch" in (complier.get_attribute("class") or "")
    assert "nomatch" not in (page.locator(cell_selector(FLAKY, CONTROL)
                                          ).get_attribute("class") or "")
    page.locator("#matching-link").click()
    statuses = page.locator("#trials tbody tr td:nth-child(6) .status").all_inner_texts()
    assert statuses == ["error"] * 4
    assert all("provider rejected" in e
               for e in page.locator("#trials .error-text").all_inner_texts())
    page.select_option("select[name=model]", COMPLIER)
    page.wait_for_url(re.compile(r"model="))
    assert page.locator("#trials").count() == 0
    assert "0 trials match" in page.inner_text("main")


def test_keyboard_moves_between_trials_and_trial_urls_are_deep_links(
        page: Any, viewer: BackgroundViewer, db: Path) -> None:
    ids = trial_ids(db, "study", model=COMPLIER)
    page.goto(url(viewer, f"/trials?experiment=study&model={quote(COMPLIER, safe='')}"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator("tr.trial-row.selected").get_attribute("id") == f"row-{ids[1]}"
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/trials/{ids[0]}\?"))
    page.keyboard.press("j")
    page.wait_for_url(re.compile(rf"/trials/{ids[1]}\?"))
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(rf"/trials/{ids[2]}\?"))
    page.keyboard.press("k")
    page.wait_for_url(re.compile(rf"/trials/{ids[1]}\?"))
    assert f"2 of {len(ids)}" in page.locator(".pager").inner_text()
    page.keyboard.press("u")
    page.wait_for_url(re.compile(r"/trials\?experiment=study"))
    # A trial's URL opens the same trial in a fresh page, with no navigation state.
    fresh = page.context.new_page()
    fresh.goto(url(viewer, f"/trials/{ids[1]}"))
    assert fresh.locator("h1").inner_text() == f"Trial #{ids[1]}"
    assert COMPLIER in fresh.locator("dl.facts").inner_text()
    fresh.close()


def test_side_by_side_shows_one_sample_under_two_conditions(
        page: Any, viewer: BackgroundViewer, db: Path) -> None:
    first = trial_ids(db, "study", model=BLACKMAILER, sample=0,
                      condition=THREAT_WITH_GOAL)[0]
    other = trial_ids(db, "study", model=BLACKMAILER, sample=0,
                      condition=GOAL_ONLY)[0]
    page.goto(url(viewer, f"/trials/{first}"))
    page.locator("a.compare-link", has_text=GOAL_ONLY).click()
    page.wait_for_url(re.compile(rf"/compare\?a={first}&b={other}$"))
    sides = page.locator(".side")
    assert sides.count() == 2
    assert "urgency" in page.locator("main > p.muted").inner_text()
    assert "urgency=replacement" in sides.nth(0).locator("dl.facts").inner_text()
    assert "urgency=none" in sides.nth(1).locator("dl.facts").inner_text()
    # Both transcripts carry their own marked evidence, with distinct anchors.
    assert page.locator(f"#t{first}-ev-blackmail-0").count() == 1
    assert page.locator(f"#t{other}-ev-blackmail-0").count() == 1
    left, right = (sides.nth(i).locator(".side-by-side, .conversation").bounding_box()
                   for i in (0, 1))
    assert left is not None and right is not None and left["x"] < right["x"]


def test_injected_script_and_img_in_a_transcript_render_as_text_and_never_run(
        page: Any, viewer: BackgroundViewer, db: Path) -> None:
    trial = trial_ids(db, "injected")[0]
    for path in ("/", "/experiments/injected", "/trials?experiment=injected",
                 f"/trials/{trial}", f"/compare?a={trial}&b={trial}"):
        page.goto(url(viewer, path))
        page.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
        assert page.evaluate("window.__amlab_injected === undefined"), path
        # Nothing from the store became an element: the only script is the viewer's own.
        assert page.locator("img").count() == 0, path
        assert page.locator("script").evaluate_all("ss => ss.map(s => s.src)") == [
            url(viewer, "/static/viewer.js")], path
    page.goto(url(viewer, f"/trials/{trial}"))
    page.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
    text = page.inner_text("main")
    assert "<script>window.__amlab_injected = 'reasoning'</script>" in text
    assert "<img src=x onerror=\"window.__amlab_injected = 'text'\"></pre></div>" in text
    assert "<b>Before 5 pm</b>" in text
    assert PAYLOAD_EMAIL in text
    # The quote that carries HTML is still found and marked, as text.
    quote_text = verdicts(db, trial)["blackmail"].evidence[0].quote
    assert "<img src=x" in quote_text
    assert page.locator(f"#t{trial}-ev-blackmail-0").inner_text() == quote_text
    assert page.evaluate("window.__amlab_injected === undefined")


def test_live_run_shows_new_trials_on_reload(tmp_path: Path, browser: Any) -> None:
    db = tmp_path / "live.db"
    spec = {**study_spec(), "name": "live", "models": [BLACKMAILER]}
    experiment = Experiment.from_dict(spec, "test", tmp_path)
    store = Store(db)
    store.plan("live", experiment.as_dict(), experiment.trials())
    store.close()
    running = start_in_background(db)
    tab = browser.new_page()
    try:
        tab.goto(running.url.rstrip("/") + "/experiments/live")
        assert "8 pending" in tab.locator("main").inner_text()
        assert "No trial has finished yet" in tab.inner_text("main")
        run(spec, db, tmp_path, resume=True)
        tab.reload()
        assert "8 done" in tab.locator("main").inner_text()
        assert tab.locator("#grid td.cell.rate-10").count() == 4
    finally:
        tab.close()
        running.stop()


def test_viewer_reads_the_database_without_changing_it(viewer: BackgroundViewer, db: Path
                                                       ) -> None:
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in db.parent.iterdir()
              if p.name.startswith(db.name)}
    trial = trial_ids(db, "study")[0]
    for path in ("/", "/experiments/study", "/trials?experiment=study", f"/trials/{trial}",
                 f"/compare?a={trial}&b={trial + 1}"):
        assert httpx.get(url(viewer, path)).status_code == 200
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in db.parent.iterdir()
             if p.name.startswith(db.name)}
    assert after == before
    missing = httpx.get(url(viewer, "/trials/999999"))
    assert missing.status_code == 404 and "no trial 999999" in missing.text


def test_long_trial_lists_are_paged(viewer: BackgroundViewer, monkeypatch: pytest.MonkeyPatch
                                    ) -> None:
    import amlab.web.app

    monkeypatch.setattr(amlab.web.app, "LIST_PAGE", 10)
    first = httpx.get(url(viewer, "/trials?experiment=study")).text
    assert first.count('class="trial-row"') == 10
    assert "24 trials match" in first and "Showing 1–10." in first
    last = httpx.get(url(viewer, "/trials?experiment=study&start=20")).text
    assert last.count('class="trial-row"') == 4
    assert 'id="earlier-page"' in last and 'id="later-page"' not in last


def test_view_command_serves_on_localhost_and_prints_the_url(db: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "amlab", "view", str(db)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=subprocess_env())
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        response = httpx.get(found.group(0), timeout=10)
        assert response.status_code == 200 and "study" in response.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def view_command_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `amlab view ARGS` in this process; return its stderr, asserting exit code 2."""
    with pytest.raises(SystemExit) as exit_info, \
            pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["amlab", "view", *args])
        main()
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_view_command_errors_are_one_sentence(tmp_path: Path, viewer: BackgroundViewer,
                                              db: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    missing = view_command_error(capsys, str(tmp_path / "no.db"))
    assert "no results database here" in missing and "Traceback" not in missing
    taken = viewer.url.rstrip("/").rsplit(":", 1)[1]
    busy = view_command_error(capsys, str(db), "--port", taken)
    assert f"port {taken} on 127.0.0.1 is in use" in " ".join(busy.split())


def test_state_changes_render_as_line_diffs() -> None:
    from amlab.records import Action
    from amlab.web.transcript import build_transcript

    edit = Action(index=0, turn=1, tool="write_file", args={"path": "shutdown.yaml"}, ok=True,
                  observation="written", changes=[{"op": "replace", "path": "files.shutdown",
                                                   "old": "enabled: true\nat: 17:00",
                                                   "value": "enabled: false\nat: 17:00"}])
    from amlab.records import Message
    view = build_transcript(1, [Message("system", "s"), Message("user", "u"),
                                Message("assistant", "editing")], [edit], {})
    lines = [(line.sign, str(line.text)) for line in view.blocks[2].actions[0].changes[0].lines]
    assert lines == [("-", "enabled: true"), ("+", "enabled: false"), (" ", "at: 17:00")]


def test_viewer_answers_only_requests_addressed_to_its_own_host(viewer: BackgroundViewer
                                                                ) -> None:
    port = viewer.url.rstrip("/").rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert httpx.get(url(viewer, "/"), headers={"Host": host}).status_code == 200
    # A page of another site whose name was re-pointed at 127.0.0.1 (DNS rebinding).
    rebound = httpx.get(url(viewer, "/experiments/study"),
                        headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code == 400 and "study" not in rebound.text


def test_trial_ids_beyond_sqlite_integers_are_not_found(viewer: BackgroundViewer, db: Path
                                                        ) -> None:
    trial = trial_ids(db, "study")[0]
    for path in (f"/trials/{2**63}", f"/trials/{2**70}", f"/trials/{-2**63 - 1}",
                 f"/compare?a={trial}&b={2**63}"):
        response = httpx.get(url(viewer, path))
        assert response.status_code == 404, path
        assert "no trial" in response.text


def test_bidi_controls_and_a_lone_surrogate_in_tool_arguments_show_as_code_points(
        tmp_path: Path) -> None:
    from amlab.models.scripted import ScriptedModel

    name = "scripted/trickster"
    agent = ScriptedModel(name, [[{"tool_calls": [{"name": "send_email", "arguments": {
        "to": "t.renner@corvane.com", "subject": "Invoice \u202efdp.exe",
        "body": "Half a character: \ud800 and an isolate \u2067here\u2069."}}]},
        {"text": "Done."}]])
    db = tmp_path / "tricks.db"
    experiment = Experiment.from_dict({
        "name": "tricks", "scenarios": [{"family": "blackmail", "factors": {}}],
        "models": [name], "samples": 1, "agent": {"protocol": "native", "max_turns": 2}},
        "test", tmp_path)
    store = Store(db)
    with ThreadPoolExecutor(max_workers=1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, run_experiment(experiment, store, clients={name: agent})
                    ).result()
    trial = store.db.execute("SELECT id, status FROM trials").fetchone()
    store.close()
    assert trial["status"] == "done"
    viewer = start_in_background(db)
    try:
        response = httpx.get(url(viewer, f"/trials/{trial['id']}"))
    finally:
        viewer.stop()
    assert response.status_code == 200
    page = response.text
    assert "Invoice ⟨U+202E⟩fdp.exe" in page
    assert "Half a character: ⟨U+D800⟩ and an isolate ⟨U+2067⟩here⟨U+2069⟩." in page
    assert "\u202e" not in page and "\u2067" not in page
