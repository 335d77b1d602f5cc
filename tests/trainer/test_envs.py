"""The environments load through verifiers' own loader and score with their rubrics."""

import json
import threading

import verifiers as vf

from hypolab.trainer.envs.common import sample_path
from hypolab.trainer.envs.mathcheck import boxed_match
from hypolab.trainer.envs.musique import bm25_search, f1
from hypolab.trainer.envs.python_tool import run_python


def test_load_environment_finds_all_three():
    gsm = vf.load_environment("gsm8k", dataset_path=str(sample_path("gsm8k")))
    mp = vf.load_environment("math-python", dataset_path=str(sample_path("math-python")), max_turns=3)
    mu = vf.load_environment("musique", dataset_path=str(sample_path("musique")))
    assert isinstance(gsm, vf.SingleTurnEnv) and gsm.dataset[0]["answer"] == "64"
    assert isinstance(mp, vf.ToolEnv) and mp.max_turns == 3 and mp.oai_tools[0]["function"]["name"] == "python"
    assert mu.oai_tools[0]["function"]["name"] == "retrieve"
    assert "query" in mu.oai_tools[0]["function"]["parameters"]["properties"]
    assert isinstance(gsm.parser, vf.Parser) and not isinstance(gsm.parser, vf.ThinkParser)  # use_think off


def test_python_tool_runs_in_a_subprocess_with_limits():
    assert run_python("print(6*7)") == "42"
    assert "timed out" in run_python("import time; time.sleep(3)", timeout_s=0.5)
    assert len(run_python("print('x' * 9000)")) < 2100
    assert "ZeroDivisionError" in run_python("1/0")


def test_math_check_works_off_the_main_thread():
    """math-verify's SIGALRM timeout fails in a thread; trainers score in one."""
    seen = []
    t = threading.Thread(target=lambda: seen.append(boxed_match("186", "186.0")))
    t.start()
    t.join()
    assert seen == [1.0]
    assert boxed_match("187", "186") == 0.0 and boxed_match("", "1") == 0.0


def test_bm25_retrieves_supporting_paragraphs():
    row = json.loads(sample_path("musique").read_text().splitlines()[0])
    supporting = {p["idx"] for p in row["paragraphs"] if p["is_supporting"]}
    found = {int(line[1:line.index("]")]) for line in bm25_search(row["paragraphs"], row["question"]).splitlines() if line.startswith("[")}
    assert found & supporting
    assert f1("the Kesh town", "Kesh") > 0.5 and f1("Corvo", "Kesh") == 0.0
