"""Property-based fuzzing of the coordinator's OpenAPI schema (schemathesis) on 127.0.0.1.

Every operation gets generated requests — valid and invalid, with and without the token —
against a live coordinator; no answer may be a 5xx, and every answer must match the
schema (status code documented, content type, body). A summary is written to
artifacts/fuzz.txt, which CI prints.
"""

from collections import Counter

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from ..conftest import ROOT, TOKEN

SEEN: Counter = Counter()
ARTIFACT = ROOT / "artifacts" / "fuzz.txt"


@pytest.fixture(scope="module")
def fuzz_coordinator(tmp_path_factory):
    """A coordinator with a history (a run, stored hypotheses) but no scheduler launching work."""
    from ..conftest import LiveCoordinator, free_port
    from hypolab.coordinator.config import CoordinatorSettings

    tmp = tmp_path_factory.mktemp("fuzz")
    live = LiveCoordinator(CoordinatorSettings(db_path=tmp / "fuzz.sqlite", data_dir=tmp, token=TOKEN,
                                               coordinator_url=f"http://127.0.0.1:{free_port()}", schedule=False))
    live.client.post("/api/runs", json={"hypotheses": ["H07"]}).raise_for_status()
    live.lab.launcher.activate()  # H06's experiment exists, so id-taking routes have a real target...
    live.lab.store.update_experiment("H06.gsm8k", status="running")  # ...that accepts metrics
    yield live
    live.close()
    ARTIFACT.parent.mkdir(exist_ok=True)
    lines = [f"{op}: {n} requests" for op, n in sorted(SEEN.items())]
    operations = len({k.rsplit(" ", 1)[0] for k in SEEN})
    ARTIFACT.write_text(f"schemathesis fuzz: {sum(SEEN.values())} requests over {operations} operations, no 5xx, "
                        f"statuses {dict(sorted(Counter(k.split()[-1] for k in SEEN.elements()).items()))}\n"
                        + "\n".join(lines) + "\n")


def test_no_server_errors_and_schema_conformance(fuzz_coordinator):
    """Each operation in turn (the pytest plugin of schemathesis 4 predates pytest 9)."""
    from hypothesis import given

    api = schemathesis.openapi.from_url(f"{fuzz_coordinator.url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [r.ok() for r in api.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        if operation.path == "/api/events":  # the event stream never ends by design; own tests cover it
            continue

        strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
            generation_mode=GenerationMode.NEGATIVE)

        @given(case=strategy)
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            salt = hash(repr(case.body) + repr(case.query) + repr(case.path_parameters))
            with_token = salt % 4 != 0
            if case.path_parameters and "eid" in case.path_parameters and salt % 2:
                case.path_parameters["eid"] = "H06.gsm8k"  # a real experiment half of the time
            if case.path_parameters and "hid" in case.path_parameters and salt % 3 == 0:
                case.path_parameters["hid"] = "H07"
            if operation.path.endswith("/logs") and isinstance(case.query, dict) and "follow" in case.query:
                case.query["follow"] = "false"  # following a running experiment's log streams until it ends
            response = case.call(headers={"Authorization": f"Bearer {TOKEN}"} if with_token else {}, timeout=10)
            SEEN[f"{operation.method.upper()} {operation.path} {response.status_code}"] += 1
            case.validate_response(response, checks=checks)

        fuzz()
