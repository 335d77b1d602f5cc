"""Fixtures for the trainer and audit tests: the offline tokenizer (built once)."""

import pytest


@pytest.fixture(scope="session")
def tok():
    from hypolab.analysis.tokenizer import offline_qwen25

    return offline_qwen25()
