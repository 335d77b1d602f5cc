"""The HTML audit page (`hypolab audit --html`) in headless Chromium: the token view marks
every token's loss and attention state, under a legend drawn with the same classes."""

import pytest

from hypolab.audit.compare_page import html_page
from hypolab.contracts import AuditReport

from .test_dashboard import ARTIFACTS, browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = pytest.mark.browser

TOKENS = [
    {"text": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n", "role": "user", "trained": False, "attended": False},
    {"text": "<|im_start|>assistant\n", "role": "assistant", "trained": False, "attended": True},
    {"text": "<tool_call>python 2+2</tool_call>", "role": "assistant", "trained": True, "attended": True},
    {"text": "<tool_response>4</tool_response>", "role": "tool", "trained": True, "attended": False},
    {"text": "\\boxed{4}", "role": "assistant", "trained": True, "attended": None},
]


def test_token_view_marks_loss_and_attention(browser, tmp_path):  # noqa: F811
    report = AuditReport.model_validate({"env": "math-python", "stack": "legacy", "rollouts": 1,
                                         "example_rollout": {"tokens": TOKENS}})
    page = tmp_path / "audit.html"
    page.write_text(html_page([report]))
    browser.get(page.as_uri())
    shown = browser.execute_script("""return {
        tokens: [...document.querySelectorAll('p.tokens .tok')].map(t => [t.textContent, t.className, t.title]),
        legend: [...document.querySelectorAll('.legend .tok')].map(t => t.className),
        faded: getComputedStyle(document.querySelector('p.tokens .hidden')).opacity};""")
    assert [(text, cls) for text, cls, _ in shown["tokens"]] == [
        (TOKENS[0]["text"], "tok role-user no-loss hidden"),
        (TOKENS[1]["text"], "tok role-assistant no-loss attended"),
        (TOKENS[2]["text"], "tok role-assistant loss attended"),
        (TOKENS[3]["text"], "tok role-tool loss hidden"),
        (TOKENS[4]["text"], "tok role-assistant loss unobserved"),
    ]
    assert shown["tokens"][3][2] == "tool · carries loss · hidden from attention"
    drawn = {c for _, cls, _ in shown["tokens"] for c in cls.split()[2:]}
    legend = {c for cls in shown["legend"] for c in cls.split()[2:]}
    assert drawn == legend  # the legend explains exactly the states drawn
    assert float(shown["faded"]) < 1
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "audit-page.png"))
