"""The viewer in a real browser: Debian's chromium driven by Selenium through chromedriver, on scripted runs.

One headless browser serves the whole test session. Nothing is downloaded: Selenium is pointed at
the system's /usr/bin/chromedriver and /usr/bin/chromium (installed by `make test`'s set-up).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the view extra is not installed (pip install 'orca-math[view]')")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from orca_math.view import ViewServer  # noqa: E402
from tests._view_helpers import HOSTILE, as_running, checkpoint_rows, make_run, make_running_evaluation  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 30


@pytest.fixture(scope="session")
def browser():
    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="orca-math-view-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("view-browser") / "run")


@pytest.fixture(scope="module")
def served(run):
    with ViewServer([run]) as server:
        yield server


def _open(driver, url: str, ready: str):
    driver.get(url)
    return WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.CSS_SELECTOR, ready))


def _wait_text(driver, selector: str, predicate) -> str:
    def check(d):
        try:
            text = d.find_element(By.CSS_SELECTOR, selector).text
        except Exception:
            return False
        return text if predicate(text) else False

    return WebDriverWait(driver, WAIT).until(check)


def _no_alert(driver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def _screenshot(driver, path: Path) -> None:
    """Save a screenshot and check that it is not blank (a page drew text and tables, not one flat colour)."""
    from PIL import Image

    driver.save_screenshot(str(path))
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20, f"{path} looks blank"


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_overview_funnel_matches_summary_json(browser, served, run, tmp_path):
    summary = json.loads((run / "summary.json").read_text())["funnel"]
    _open(browser, served.url + "#/overview", "#funnel")
    for stage in summary["stages"]:
        row = browser.find_element(By.CSS_SELECTOR, f'#funnel tr[data-stage="{stage["name"]}"]')
        for column in ("inputs", "outputs", "dropped", "failed"):
            cell = row.find_element(By.CSS_SELECTOR, f'td[data-col="{column}"]')
            assert _number(cell.text) == stage[column], (stage["name"], column)
        seconds = row.find_element(By.CSS_SELECTOR, 'td[data-col="seconds"]').text
        assert seconds.endswith(" s") and abs(float(seconds[:-2]) - stage["seconds"]) <= 0.05, stage["name"]  # its own time
    assert _number(browser.find_element(By.CSS_SELECTOR, "#card-final .value").text) == summary["final_rows"]
    assert _number(browser.find_element(By.CSS_SELECTOR, "#card-seeds .value").text) == summary["seeds"]
    reasons = browser.find_element(By.ID, "reasons").text
    for stage in summary["stages"]:
        for reason in stage["drops_by_reason"]:
            assert reason in reasons
    _screenshot(browser, tmp_path / "overview.png")


def test_a_running_runs_overview_counts_items_and_tokens_so_far_and_shows_its_recipe(browser, run, tmp_path):
    from orca_math.recipes import load_recipes, write_run_recipe

    summary = json.loads((run / "summary.json").read_text())["funnel"]
    running = as_running(run, tmp_path / "running")
    recipe = load_recipes(Path(__file__).resolve().parents[1] / "recipes" / "quick-local.yaml", ["engine.concurrency=3"])[0]
    write_run_recipe(recipe, running, run_key=json.loads((run / "summary.json").read_text())["run_key"])
    with ViewServer([running]) as server:
        _open(browser, server.url + "#/overview", "#funnel")
        assert "Funnel so far" in browser.find_element(By.ID, "main").text
        for stage in summary["stages"]:
            row = browser.find_element(By.CSS_SELECTOR, f'#funnel tr[data-stage="{stage["name"]}"]')
            for column in ("inputs", "outputs", "dropped", "failed"):
                assert _number(row.find_element(By.CSS_SELECTOR, f'td[data-col="{column}"]').text) == stage[column], (stage["name"], column)
        tokens = browser.find_element(By.CSS_SELECTOR, "#card-tokens .value").text
        assert _number(tokens) == summary["prompt_tokens"] + summary["completion_tokens"] > 0
        browser.find_element(By.CSS_SELECTOR, "details:has(#recipe) > summary").click()
        concurrency = browser.find_element(By.CSS_SELECTOR, '#recipe tr[data-key="engine.concurrency"]')
        assert concurrency.find_elements(By.TAG_NAME, "td")[1].text == "3"


def test_search_a_problem_and_check_its_lineage_against_the_checkpoints(browser, served, run, tmp_path):
    checkpoints = checkpoint_rows(run)
    _open(browser, served.url + "#/rows", "#search")
    _wait_text(browser, "#row-total", lambda t: t not in ("", "0"))
    box = browser.find_element(By.ID, "search")
    box.clear()
    box.send_keys("three months a delivery truck")  # the Editor's first-round sentence
    browser.find_element(By.ID, "search-button").click()
    hardened = len({pid for rows in checkpoints.values() for pid, found in rows.items()
                    if any("delivery truck" in (r.get("question") or r.get("row", {}).get("question") or "") for r in found)})
    _wait_text(browser, "#row-total", lambda t: t == str(hardened))
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")
    target = next(r for r in rows if r.get_attribute("data-id").endswith("-h2") and "dropped" not in r.text)
    problem_id = target.get_attribute("data-id")
    target.click()
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#stages .node"))
    nodes = {n.get_attribute("data-stage"): n for n in browser.find_elements(By.CSS_SELECTOR, "#stages .node")}
    expected = [stage for stage, found in checkpoints.items() if problem_id in found]
    assert sorted(nodes) == sorted(expected)
    for stage in expected:
        row = checkpoints[stage][problem_id][0]
        cells = {tr.get_attribute("data-key"): tr.find_elements(By.TAG_NAME, "td")[1].text
                 for tr in nodes[stage].find_elements(By.CSS_SELECTOR, "tr[data-key]")}
        assert cells["id"] == problem_id and cells["question"] == row["question"].strip()
        if "final_answer" in row:
            assert cells["final_answer"] == str(row["final_answer"])
    # Its lineage: the seed, round 1, this problem; the Editor's edit as an insertion; links walk the tree.
    ancestors = browser.find_elements(By.CSS_SELECTOR, "#ancestors .node[data-id]")
    assert len(ancestors) == 2 and "round 2" in browser.find_element(By.ID, "this-problem").text
    inserted = " ".join(i.text for i in browser.find_elements(By.CSS_SELECTOR, "#diff ins"))
    assert "Finally the whole collection" in inserted
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#suggestions li")] == ["add a second step", "add a sharing step"]
    verification = browser.find_element(By.ID, "verification").text
    program = checkpoints["verify"][problem_id][0]["verification"]
    assert program["method"] == "program" and "answer = total" in verification and program["program_answer"] in verification
    _screenshot(browser, tmp_path / "lineage.png")
    parent = ancestors[1].get_attribute("data-id")
    ancestors[1].find_element(By.CSS_SELECTOR, "a").click()
    _wait_text(browser, "h1", lambda t: parent in t)
    assert problem_id in browser.find_element(By.ID, "children").text


def test_a_dropped_problem_shows_its_reason(browser, served, run):
    drops = [json.loads(line) for line in (run / "drops.jsonl").read_text().splitlines()]
    for drop in drops:
        _open(browser, served.url + "#/problem/" + drop["id"], "#outcome")
        _wait_text(browser, "h1", lambda t, d=drop: d["id"] in t)  # a hash change re-renders in place
        assert browser.find_element(By.ID, "outcome").get_attribute("data-status") == "dropped"
        assert browser.find_element(By.ID, "outcome-reason").text == drop["reason"]
        assert browser.find_element(By.ID, "outcome-detail").text == drop["detail"]
    # The rows table filtered by reason lists exactly them.
    _open(browser, served.url + "#/rows?status=dropped", "#rows")
    _wait_text(browser, "#row-total", lambda t: t == str(len(drops)))


def test_a_script_in_a_problem_shows_as_text_and_opens_no_dialog(browser, served, tmp_path):
    _open(browser, served.url + "#/rows?text=" + "%3Cscript%3E", "#rows")
    _wait_text(browser, "#row-total", lambda t: t == "1")
    _no_alert(browser)
    cell = browser.find_element(By.CSS_SELECTOR, "#rows tbody tr .question")
    assert cell.text == HOSTILE
    assert browser.execute_script("return document.querySelectorAll('main script').length") == 0
    browser.find_element(By.CSS_SELECTOR, "#rows tbody tr").click()
    _wait_text(browser, "#this-problem", lambda t: "<script>alert(1)</script>" in t)
    time.sleep(0.5)  # give an injected handler its chance to fire
    _no_alert(browser)
    _screenshot(browser, tmp_path / "hostile.png")


def test_row_count_grows_while_a_scripted_run_writes(browser, tmp_path):
    out = tmp_path / "live"
    errors: list[BaseException] = []

    def work():
        try:
            make_run(out, latency=0.6)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    writer = threading.Thread(target=work)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("runs/*/manifest.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        with ViewServer([out]) as server:
            _open(browser, server.url + "#/rows", "#rows")
            browser.execute_script("window.__notReloaded = true;")
            first = _number(_wait_text(browser, "#row-total", lambda t: t != ""))
            grown = _number(_wait_text(browser, "#row-total", lambda t: t != "" and _number(t) > first))
            assert grown > first and browser.execute_script("return window.__notReloaded === true")
            writer.join(timeout=120)
            assert not errors
            total = len({pid for rows in checkpoint_rows(out).values() for pid in rows})  # every problem, once
            _wait_text(browser, "#row-total", lambda t: t != "" and _number(t) == total)
            assert browser.execute_script("return window.__notReloaded === true")
            _screenshot(browser, tmp_path / "live.png")
    finally:
        writer.join(timeout=120)


def test_a_running_evaluation_shows_scores_so_far_and_its_final_scores_without_a_reload(browser, tmp_path):
    finished, running, item, failure = make_running_evaluation(tmp_path)
    with ViewServer([running]) as server:
        _open(browser, server.url + "#/overview", "#scores")
        browser.execute_script("window.__notReloaded = true;")
        assert "Scores so far" in browser.find_element(By.ID, "main").text
        assert "50.0%" in browser.find_element(By.CSS_SELECTOR, '#scores tr[data-benchmark="gsm8k"]').text
        for name in ("items.jsonl", "summary.json"):  # the evaluation ends
            shutil.copy(finished / name, running / name)
        _wait_text(browser, '#scores tr[data-benchmark="gsm8k"]', lambda t: "60.0%" in t)
        assert "Scores so far" not in browser.find_element(By.ID, "main").text
        assert browser.execute_script("return window.__notReloaded === true")
        _screenshot(browser, tmp_path / "evaluation.png")


def test_compare_two_runs_side_by_side(browser, run, tmp_path):
    other = make_run(tmp_path / "other", seeds=[{"question": "Sam has 4 pens and buys 3 more. How many pens does he have?", "answer": "7"}])
    with ViewServer([run, other]) as server:
        _open(browser, server.url + "#/compare?a=0&b=1", "#compare-scores")
        seeds = browser.find_element(By.CSS_SELECTOR, '#compare-scores tr[data-score="seeds"]')
        assert [td.text for td in seeds.find_elements(By.TAG_NAME, "td")][1:] == ["4", "1"]
        assert "differs" in seeds.get_attribute("class")
        assert browser.find_element(By.CSS_SELECTOR, '#compare-settings tr[data-setting="seeds_fingerprint"]')
        _screenshot(browser, tmp_path / "compare.png")


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Path:
    """A real learning-loop folder: three iterations of IterativeLearner with scripted samplers and a copying trainer."""
    pytest.importorskip("torch", reason="the learning loop needs torch (the train extra)")
    from orca_math.grading import GradingPolicy
    from orca_math.learn import IterativeLearner, get_preset
    from tests._learn_helpers import save_tiny_mistral
    from tests.test_learner import PROBLEMS, CopyTrainer, ScriptedSamplers

    root = tmp_path_factory.mktemp("view-loop")
    trainer = CopyTrainer()
    IterativeLearner(save_tiny_mistral(root / "base"), PROBLEMS, out=root / "loop", preset=get_preset("tiny", max_steps=2),
                     iterations=3, samples_per_problem=2, grading=GradingPolicy(mode="exact"), sampler_model_factory=ScriptedSamplers(),
                     eval=0.25, progress=False, trainers={"sft": trainer, "kto": trainer}).run_sync()
    return root / "loop"


def test_learning_loop_iterations_samples_pairs_and_a_problem_across_iterations(browser, loop, tmp_path):
    summary = json.loads((loop / "summary.json").read_text())["iterations"]
    files = sorted((p.relative_to(loop), p.stat().st_size) for p in loop.rglob("*") if p.is_file())
    with ViewServer([loop]) as server:
        _open(browser, server.url + "#/loop", "#iterations")
        for it in summary:
            row = browser.find_element(By.CSS_SELECTOR, f'#iterations tr[data-iteration="{it["iteration"]}"]')
            assert it["method"] in row.text and f"{100 * it['benchmarks']['holdout']:.1f}%" in row.text
        browser.find_element(By.CSS_SELECTOR, '#iterations tr[data-iteration="2"] a').click()
        WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#pairs table tbody tr"))
        import datasets

        pairs = datasets.load_from_disk(str(loop / "iteration-2" / "preferences" / "data" / "dpo"))
        assert f"dpo: {len(pairs)} rows" in browser.find_element(By.ID, "pairs").text
        first = browser.find_elements(By.CSS_SELECTOR, "#pairs table tbody tr")[0].text
        assert pairs[0]["chosen"].strip().splitlines()[0] in first
        labelled = (loop / "iteration-2" / "labels" / "labelled.jsonl").read_text().splitlines()
        WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#iteration-samples tbody tr"))
        assert len(browser.find_elements(By.CSS_SELECTOR, "#iteration-samples tbody tr")) == min(50, len(labelled))
        _screenshot(browser, tmp_path / "iteration.png")
        # One problem across iterations: each iteration's samples with their labels, as labelled.jsonl holds them.
        _open(browser, server.url + "#/problem/q1", "#loop-question")
        for number in (2, 3):
            labelled = [json.loads(line) for line in (loop / f"iteration-{number}" / "labels" / "labelled.jsonl").read_text().splitlines()]
            mine = [r for r in labelled if r["problem_id"] == "q1"]
            section = browser.find_element(By.CSS_SELECTOR, f'section[data-iteration="iteration-{number}"]')
            shown = [tr.find_elements(By.TAG_NAME, "td")[1].text for tr in section.find_elements(By.CSS_SELECTOR, "table.samples tbody tr")]
            assert shown == ["correct" if r["label"] else "incorrect" for r in mine]
            # ... and the preference pairs built from them.
            dpo = datasets.load_from_disk(str(loop / f"iteration-{number}" / "preferences" / "data" / "dpo"))
            built = [row for row in dpo if row["problem_id"] == "q1"]
            if built:
                rows = browser.find_elements(By.CSS_SELECTOR, f"#pairs-iteration-{number}-dpo tbody tr")
                assert len(rows) == len(built) and built[0]["rejected"].strip().splitlines()[0] in rows[0].text
        # Two iterations side by side: the method differs.
        _open(browser, server.url + "#/compare?a=0:iter:1&b=0:iter:2", "#compare-settings")
        method = browser.find_element(By.CSS_SELECTOR, '#compare-settings tr[data-setting="method"]')
        assert [td.text for td in method.find_elements(By.TAG_NAME, "td")][1:] == ["sft", "kto"]
    # Read-only here too: paging the Arrow files left no cache file beside them.
    assert sorted((p.relative_to(loop), p.stat().st_size) for p in loop.rglob("*") if p.is_file()) == files
