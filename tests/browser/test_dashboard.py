"""The dashboard in a real browser: Debian's headless Chromium driven through ChromeDriver.

A coordinator started by the test runs H06 with the fake trainer; the browser opens the
board, an experiment page (live curves: a metric posted through the API appears without
a reload), presses Cancel with the token, opens the audit page, and checks accessibility
basics (names, contrast, keyboard focus). The curves are plotly.js charts: the values
they draw, their axes and legends are read back from the page and compared with the
API's. Screenshots go to artifacts/.
"""

import os
import shutil
import time

import pytest

from ..conftest import ROOT, TOKEN

pytestmark = pytest.mark.browser

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium and chromium-driver")
        pytest.skip("no chromium / chromedriver here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def text_of(browser, css):
    """innerText of the first match, read in one step (the page re-renders on every event)."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)


def click(browser, css):
    """A real click, retried if the element was re-rendered under the pointer."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(20):
        try:
            browser.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"could not click {css}")


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the page is re-rendering
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def lab(make_coordinator, monkeypatch):
    monkeypatch.setenv("FAKE_STEP_SLEEP", "0.2")  # slow enough to watch it run
    live = make_coordinator()
    live.client.post("/api/runs", json={"hypotheses": ["H07"]}).raise_for_status()
    live.wait(lambda: live.client.get("/api/experiments/H06.gsm8k").json().get("status") == "running", what="running")
    return live


def test_board_experiment_and_audit_pages(browser, lab):
    from selenium.webdriver.common.by import By

    browser.get(lab.url + "/")
    cards = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-hypothesis]"), what="board cards")
    assert [c.get_attribute("data-hypothesis") for c in cards][:5] == ["H06", "H07", "H02", "H04", "H05"]
    assert text_of(browser, "[data-hypothesis=H06] .badge") == "testing"  # a text label, not colour alone
    assert "after: H06" in text_of(browser, "[data-hypothesis=H07]")
    browser.save_screenshot(str(ARTIFACTS / "board.png"))

    # the experiment page follows the run live: a metric posted through the API shows up
    click(browser, "a[href='#/experiment/H06.gsm8k']")
    points = lambda m: int(browser.execute_script(  # noqa: E731
        "const e = document.querySelector(`[data-metric=${arguments[0]}]`); return e ? e.dataset.points : -1;", m))
    wait_for(lambda: points("reward") > 0, what="reward curve")
    before = points("grad_norm")
    event = {"experiment_id": "H06.gsm8k", "step": 100000, "time": time.time(), "metrics": {"grad_norm": 0.7}}
    lab.client.post("/api/experiments/H06.gsm8k/metrics", json=event).raise_for_status()
    wait_for(lambda: points("grad_norm") > before, what="posted metric on chart")
    assert browser.execute_script("return document.querySelector('[data-metric=grad_norm]').data.length") == 1
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1  # no reload
    # the spec's learning rate as the spec has it (1e-6, not 0), equal to the API's value
    planned = lab.client.get("/api/experiments/H06.gsm8k").json()["config"]["training"]["learning_rate"]
    shown = text_of(browser, "tr[data-field='training.learning_rate'] td.value")
    assert shown == "1e-6" and float(shown) == planned
    # what ran: the trainer reports a rehearsal; the page badges it and shows the effective settings
    ran = lab.client.get("/api/experiments/H06.gsm8k").json()["config"]
    ran["training"]["max_steps"] = 2
    lab.client.post("/api/experiments/H06.gsm8k/config", json={
        "experiment_id": "H06.gsm8k", "rehearsal": True, "spec": ran,
        "overrides": [{"path": "training.max_steps", "value": 2, "source": "rehearsal"}]}).raise_for_status()
    lab.client.post("/api/experiments/H06.gsm8k/metrics", json={
        "experiment_id": "H06.gsm8k", "step": 100001, "time": time.time(), "rehearsal": True,
        "metrics": {"grad_norm": 0.5}}).raise_for_status()
    browser.refresh()
    wait_for(lambda: text_of(browser, "h1 .badge.rehearsal") == "rehearsal", what="rehearsal badge")
    assert "CPU rehearsal" in text_of(browser, "p.meta")
    assert text_of(browser, "tr[data-field='training.max_steps'] td.value") == "2"
    assert "rehearsal: planned 200" in text_of(browser, "tr[data-field='training.max_steps']")
    browser.save_screenshot(str(ARTIFACTS / "experiment.png"))
    browser.get(lab.url + "/")
    wait_for(lambda: text_of(browser, "[data-hypothesis=H06] .exps .rehearsal") == "rehearsal", what="board badge")
    browser.save_screenshot(str(ARTIFACTS / "board-rehearsal.png"))
    browser.get(lab.url + "/#/experiment/H06.gsm8k")
    wait_for(lambda: points("reward") > 0, what="experiment page again")

    # cancel needs the token: without it the API refuses, with it the state changes
    click(browser, "#cancel")
    wait_for(lambda: "cancel failed" in text_of(browser, "#live"), what="refusal shown")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    click(browser, "#token-form button")
    click(browser, "#cancel")
    wait_for(lambda: text_of(browser, "h1 .badge") == "cancelled", what="cancelled badge")
    assert lab.client.get("/api/experiments/H06.gsm8k").json()["status"] == "cancelled"

    # audits page: the method-2 table and the stored reports
    lab.wait(lambda: any(e["kind"] == "audit" and e["report"] for e in lab.client.get("/api/experiments").json()),
             timeout=60, what="an audit report")
    browser.get(lab.url + "/#/audits")
    wait_for(lambda: "CONTEXT_HIDDEN_FROM_ATTENTION" in (text_of(browser, "#main") or ""), what="finding")
    # the comparison table may render after the first report's findings: wait for it too
    wait_for(lambda: "math-python" in text_of(browser, "table[aria-label='method 2 comparison']"),
             what="method 2 comparison table")
    shown = browser.execute_script("""return {
        bars: [...document.querySelectorAll('.bar[role=img]')].map(b => b.getAttribute('aria-label')),
        hidden: document.querySelectorAll('.tok.role-user.hidden').length,
        trained: document.querySelectorAll('.tok.role-assistant.loss').length};""")
    assert "tool: 80 tokens" in shown["bars"]  # tokens by role as bars
    assert shown["hidden"] >= 1 and shown["trained"] >= 1  # token spans: hidden from attention, carrying loss
    # the fake audit's known tokens (math-python: multi-turn): the question is hidden from
    # attention and carries no loss; the answer carries loss and is attended
    classes = browser.execute_script("""
        const card = document.querySelector("section[aria-label='report H07.audit-math-python']");
        return {tokens: [...card.querySelectorAll('p.tokens .tok')].map(t => t.className),
                legend: [...card.querySelectorAll('.legend .tok')].map(t => t.className)};""")
    assert classes["tokens"] == ["tok role-user no-loss hidden", "tok role-assistant loss attended"]
    drawn = {c for t in classes["tokens"] for c in t.split()[2:]}
    legend = {c for t in classes["legend"] for c in t.split()[2:]}
    assert drawn <= legend  # every state drawn is in the legend, drawn with the same class
    browser.save_screenshot(str(ARTIFACTS / "audits.png"))
    browser.execute_script("document.querySelector(\"section[aria-label='report H07.audit-math-python'] .legend\").scrollIntoView()")
    browser.save_screenshot(str(ARTIFACTS / "audits-tokens.png"))


def test_accessibility_basics(browser, lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(lab.url + "/#/experiment/H06.gsm8k")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-metric] .main-svg"), what="experiment page")
    # every control has an accessible name
    unnamed = browser.execute_script("""
        return [...document.querySelectorAll('button, input, a, svg[role=img]')].filter(e => {
          const label = e.id && document.querySelector(`label[for="${e.id}"]`);
          return !(e.getAttribute('aria-label') || (label && label.textContent.trim()) || e.textContent.trim());
        }).map(e => e.outerHTML.slice(0, 80));""")
    assert unnamed == []
    # text contrast of badges and body text meets WCAG AA (4.5:1)
    ratios = browser.execute_script("""
        const lum = (c) => { const v = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(x => x / 255)
            .map(x => x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4); return 0.2126*v[0] + 0.7152*v[1] + 0.0722*v[2]; };
        const bg = (e) => { while (e) { const c = getComputedStyle(e).backgroundColor; if (!c.includes('rgba(0, 0, 0, 0)')) return c; e = e.parentElement; } return 'rgb(255,255,255)'; };
        return [...document.querySelectorAll('.badge, p, td, h1, h2, button, a')].filter(e => e.textContent.trim()).map(e => {
          const a = lum(getComputedStyle(e).color), b = lum(bg(e));
          return [e.tagName + '.' + e.className, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });""")
    low = [r for r in ratios if r[1] < 4.5 and "disabled" not in r[0]]
    assert ratios and low == [], low[:5]
    # keyboard: Tab reaches the controls, and focus is visible
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    focused = []
    for _ in range(8):
        active = browser.switch_to.active_element
        focused.append((active.tag_name, browser.execute_script(
            "const s = getComputedStyle(arguments[0]); return s.outlineStyle !== 'none' && s.outlineWidth !== '0px';", active)))
        active.send_keys(Keys.TAB)
    assert {"a", "input", "button"} <= {t for t, _ in focused}
    assert all(visible for t, visible in focused if t in ("a", "input", "button"))


def test_long_curves_are_downsampled_for_the_browser(browser, lab):
    """10,000 steps on one chart: all are counted, at most ~1,200 points are drawn."""
    for start in range(0, 10_000, 1_000):
        batch = [{"experiment_id": "H06.gsm8k", "step": 200_000 + i, "time": time.time(), "metrics": {"kl": i * 1e-4}}
                 for i in range(start, start + 1_000)]
        lab.client.post("/api/experiments/H06.gsm8k/metrics", json=batch).raise_for_status()
    browser.get(lab.url + "/#/experiment/H06.gsm8k")
    wait_for(lambda: int(browser.execute_script(
        "const e = document.querySelector('[data-metric=kl]'); return e ? e.dataset.points : 0;")) >= 10_000,
        what="10,000-step curve")
    drawn = browser.execute_script("return document.querySelector('[data-metric=kl]').data[0].x.length")
    assert 100 < drawn <= 1_300


def chart_facts(browser, metric):
    """What plotly drew for one metric: traces, legend entries, axis ranges and tick labels."""
    return browser.execute_script("""
        const gd = document.querySelector(`[data-metric=${arguments[0]}]`), L = gd._fullLayout;
        const ticks = (ax) => [...gd.querySelectorAll(`.${ax}tick text`)].map(t => t.textContent.replace(/\\u2212/g, '-'));
        return {traces: gd.data.map(t => ({name: t.name, x: [...t.x], y: [...t.y]})),
                legend: [...gd.querySelectorAll('.legend .traces .legendtext')].map(t => t.textContent),
                xrange: L.xaxis.range, yrange: L.yaxis.range, xtitle: L.xaxis.title.text,
                xticks: ticks('x'), yticks: ticks('y')};""", metric)


def test_curves_show_the_api_values_with_axes_and_legend(browser, make_coordinator, monkeypatch):
    """H07's treatment over its control: every drawn point is the API's, axes hold the data."""
    from selenium.webdriver.common.by import By

    monkeypatch.setenv("FAKE_STEPS", "40")
    monkeypatch.setenv("FAKE_STEP_SLEEP", "0.1")
    lab = make_coordinator()
    lab.client.post("/api/runs", json={"hypotheses": ["H07"]}).raise_for_status()
    status = lambda: lab.client.get("/api/experiments/H07.math-python").json().get("status")  # noqa: E731
    lab.wait(lambda: status() == "running", timeout=120, what="H07's treatment running")
    tiny = [{"experiment_id": "H07.math-python", "step": s, "time": time.time(), "metrics": {"grad_norm": (1 + s % 7) * 1e-7}}
            for s in range(40)]  # a metric at the 1e-7 scale
    lab.client.post("/api/experiments/H07.math-python/metrics", json=tiny).raise_for_status()
    lab.wait(lambda: status() in ("succeeded", "failed", "cancelled"), timeout=120, what="H07's treatment finished")
    api = {}
    for eid in ("H07.math-python", "H06.gsm8k"):
        for row in lab.client.get(f"/api/experiments/{eid}/metrics").json():
            api.setdefault((eid, row["name"]), {})[row["step"]] = row["value"]

    browser.get(lab.url + "/#/experiment/H07.math-python")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-metric=reward] .main-svg"), what="charts")
    reward = chart_facts(browser, "reward")
    curves = [t for t in reward["traces"] if t["name"] in ("H07.math-python", "H06.gsm8k")]
    assert [t["name"] for t in curves] == ["H07.math-python", "H06.gsm8k"]
    # every line drawn has its key: both curves, and the decision mark(s) by their label
    assert reward["legend"] == [t["name"] for t in reward["traces"]]
    assert any("no improvement" in name for name in reward["legend"][2:])
    assert reward["xtitle"] == "step"
    for trace in curves:
        values = api[(trace["name"], "reward")]
        assert trace["x"] == sorted(values) and trace["y"] == [values[s] for s in trace["x"]]
    for metric in ("reward", "kl", "grad_norm"):
        facts = chart_facts(browser, metric)
        ys = [y for t in facts["traces"] for y in t["y"]]
        xs = [x for t in facts["traces"] for x in t["x"]]
        assert facts["yrange"][0] <= min(ys) and max(ys) <= facts["yrange"][1], (metric, facts["yrange"])
        assert facts["xrange"][0] <= min(xs) and max(xs) <= facts["xrange"][1]
        ticks = [float(t) for t in facts["yticks"]]
        assert len(set(ticks)) == len(ticks) >= 3, (metric, facts["yticks"])  # distinct, readable labels
    grad = chart_facts(browser, "grad_norm")
    assert grad["traces"][0]["y"] == [api[("H07.math-python", "grad_norm")][s] for s in grad["traces"][0]["x"]]
    assert any("e-7" in t for t in grad["yticks"]), grad["yticks"]  # 1e-7 scale shown as such, not as 0
    browser.save_screenshot(str(ARTIFACTS / "experiment-control.png"))
