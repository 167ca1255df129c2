"""Service deployments: the reference service over each store, both directions, on real servers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness.stack.process import free_port
from harness.stack.redis import RedisServer
from harness.stack.service import ReferenceService
from tests.integration.conftest import SHIPPED, TEST_SCENARIOS, run_cli, start_script

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--users", "16", "--spawn-rate", "16", "--duration", "3"]


@pytest.mark.parametrize("scenario", ["service-redis-counter", "service-postgres-counter", "service-postgres-seats",
                                      "service-dynamodb-counter"])
def test_safe_service_deployments_pass(tmp_path, scenario):
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", scenario, *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]
    assert v["totals"]["ok"] > 50


@pytest.mark.parametrize(("scenario", "evidence"), [("service-postgres-counter-unsafe", "lost"),
                                                    ("service-redis-seats-unsafe", "oversold")])
def test_unsafe_service_deployments_fail_with_the_loss_quantified(tmp_path, scenario, evidence):
    # long enough to sell the 2,000 seats out at a slow machine's ~700 ops/s: only then can one be oversold
    code, v = run_cli(tmp_path, "-f", str(SHIPPED), "-s", scenario, "--users", "32", "--duration", "6")
    assert v is not None and (code, v["verdict"]) == (1, "fail")
    assert v["totals"][evidence] > 0


@pytest.mark.parametrize("scenario", ["service-dynamodb-counter-unsafe", "service-redis-counter-unsafe"])
def test_every_store_catches_its_unsafe_variant(tmp_path, scenario):
    code, v = run_cli(tmp_path, "-f", str(TEST_SCENARIOS), "-s", scenario)
    assert v is not None and (code, v["verdict"]) == (1, "fail")
    assert v["totals"]["lost"] > 0


@pytest.mark.parametrize("scenario", ["service-redis-counter-2w", "service-postgres-counter-2w"])
def test_two_worker_processes_keep_the_guarantees(tmp_path, scenario):
    code, v = run_cli(tmp_path, "-f", str(TEST_SCENARIOS), "-s", scenario)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v and v["reason"]


def test_workers_starting_together_on_a_fresh_postgres_all_start():
    """Each worker creates the schema at startup; two `CREATE TABLE IF NOT EXISTS` at once collide in
    PostgreSQL, and uvicorn stops every worker when one fails to start (a dead service after a good
    /health). Eight stores started at once, on a fresh database, ten times: every start succeeds."""
    import asyncio

    from harness.service.stores.postgres import PostgresStore
    from harness.stack.postgres import PostgresServer

    async def together(url: str) -> list[BaseException | None]:
        stores = [PostgresStore(url, pool_size=2) for _ in range(8)]
        outcomes = await asyncio.gather(*(s.start() for s in stores), return_exceptions=True)
        await asyncio.gather(*(s.close() for s in stores))
        return [o if isinstance(o, BaseException) else None for o in outcomes]

    with PostgresServer() as pg:
        for _ in range(10):
            pg.sql("DROP TABLE IF EXISTS counters; DROP TABLE IF EXISTS idempotency")
            failures = [e for e in asyncio.run(together(pg.url)) if e is not None]
            assert not failures, failures[0]


def _request(url: str, method: str = "POST", body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_input_is_400_and_a_failing_store_503_never_500():
    with RedisServer() as redis, ReferenceService(store="redis", store_url=redis.url) as svc:
        base = svc.url + "/counters"
        for path, body in (("/a%20b/increment", b'{"amount": 1}'), ("/k/increment", b"not json"),
                           ("/k/increment", b'{"amount": "1"}'), ("/k/increment", b'{"amount": true}'),
                           ("/k/increment", b'{"amount": 1e99}'), ("/k/increment", b"{}"),
                           ("/" + "k" * 300 + "/increment", b'{"amount": 1}')):
            status, doc = _request(base + path, body=body)
            assert status == 400 and "error" in doc, (path, body, status)
        assert _request(base + "/k", "PUT", b'{"value": "x"}')[0] == 400
        assert _request(base + "/k/increment", body=b'{"amount": 2}') == (200, {"value": 2})
        redis.stop()  # the store goes away under the service
        status, doc = _request(base + "/k/increment", body=b'{"amount": 1}')
        assert status == 503 and "store error" in doc["error"]


def test_memory_store_refuses_several_workers():
    proc = subprocess.run([sys.executable, "-m", "harness.service", "--store", "memory", "--workers", "2",
                           "--port", str(free_port())], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "cannot serve --workers > 1" in proc.stderr


def _docs_contract_example() -> str:
    text = (ROOT / "docs" / "own-service.md").read_text()
    m = re.search(r"<!-- custom-contract-example -->\s*```yaml\n(.*?)```", text, re.S)
    assert m, "the custom contract example of docs/own-service.md is missing"
    return m.group(1)


@pytest.fixture(params=[False, True], ids=["correct", "losing"])
def custom_service(request):
    proc, url = start_script("custom_service.py", *(["--lose"] if request.param else []))
    yield url, request.param
    proc.terminate()
    proc.wait(timeout=10)


def test_the_docs_example_describes_a_different_api(tmp_path, custom_service):
    url, losing = custom_service
    scenarios = tmp_path / "mine.yaml"
    scenarios.write_text(_docs_contract_example())
    code, v = run_cli(tmp_path / "a", "-f", str(scenarios), "-s", "my-counter", "--target-url", url, *SHORT)
    assert v is not None
    if losing:
        assert (code, v["verdict"]) == (1, "fail") and v["totals"]["lost"] > 0
        return
    assert (code, v["verdict"]) == (0, "pass"), v["reason"]
    code, v = run_cli(tmp_path / "b", "-f", str(scenarios), "-s", "my-seats", "--target-url", url, *SHORT)
    assert v is not None and (code, v["verdict"]) == (0, "pass"), v["reason"]
    assert v["totals"]["fail"] > 0  # 410 Gone once sold out


def _keyed(url: str, token: str) -> tuple[int, dict, str | None]:
    req = urllib.request.Request(url, data=b'{"amount": 1}', method="POST",
                                 headers={"Content-Type": "application/json", "Idempotency-Key": token})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read()), r.headers.get("Idempotent-Replayed")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), None


@pytest.mark.parametrize("store", ["memory", "redis", "postgres"])
def test_each_store_applies_an_idempotency_key_once_and_a_lookup_fences_it(store):
    from contextlib import ExitStack

    with ExitStack() as stack:
        url = None
        if store == "redis":
            url = stack.enter_context(RedisServer()).url
        elif store == "postgres":
            from harness.stack.postgres import PostgresServer

            url = stack.enter_context(PostgresServer()).url
        base = stack.enter_context(ReferenceService(store=store, store_url=url)).url
        assert _request(f"{base}/counters/k", "PUT", b'{"value": 0}')[0] == 200
        assert _keyed(f"{base}/counters/k/increment", "op-1") == (200, {"value": 1}, None)
        assert _keyed(f"{base}/counters/k/increment", "op-1") == (200, {"value": 1}, "true")  # replayed
        assert _request(f"{base}/counters/k", "GET")[1] == {"value": 1}  # applied once
        assert _request(f"{base}/idempotency/op-1/resolve") == (200, {"value": 1})
        assert _request(f"{base}/idempotency/op-2/resolve")[0] == 404  # not applied: fenced from now on
        assert _keyed(f"{base}/counters/k/increment", "op-2")[0] == 409
        assert _request(f"{base}/counters/k", "GET")[1] == {"value": 1}
