"""Prometheus metrics of the run in progress (``counterbench run --metrics-port P``): ``/metrics`` in
prometheus-client's text format, for a Prometheus to scrape and a Grafana to plot
(``deploy/grafana/counterbench.json``).

Made at each scrape from what the live progress line reads: every load process's progress file (this
machine's, and on a master the other machines' figures it keeps), the master's roster, and the online
checks' findings. Nothing is added to the load's hot path.

    counterbench_ops_total{scenario, op, outcome}           ops completed, by op and outcome (counter)
    counterbench_latency_ms{scenario, op, outcome, quantile} the last closed 1-s window: p50, p99, p99.9 and
                                                             max (quantile "1") of service time; over several
                                                             load processes, the worst process's
    counterbench_violations_total{scenario, check}          what the online checks found so far (counter)
    counterbench_load_cpu_ratio{scenario, worker}           each load process's share of one core, last window
    counterbench_load_cpu_seconds_total{scenario, worker}   each load process's CPU so far (counter)
    counterbench_workers{scenario, state}                   a distributed run's workers: connected, expected
    counterbench_run_info{scenario, run_id}                 1 while a run's load goes on
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from harness.core.runfolder import RunFolder
from harness.metrics.tags import SERVICE, Tag

QUANTILES = (("p50", "0.5"), ("p99", "0.99"), ("p99.9", "0.999"), ("max", "1"))


@dataclass(frozen=True, kw_only=True)
class Watched:
    """The run whose figures ``/metrics`` shows."""

    folder: RunFolder
    scenario: str
    violations: Callable[[], dict[str, int]]  # the online checks' counts by check


class _Collector:
    def __init__(self) -> None:
        self.watched: Watched | None = None

    def collect(self) -> Iterator[Metric]:
        w = self.watched
        if w is None:
            return
        s = w.scenario
        ops = CounterMetricFamily("counterbench_ops", "ops completed, by op and outcome",
                                  labels=["scenario", "op", "outcome"])
        latency = GaugeMetricFamily("counterbench_latency_ms", "service time in the last closed 1-s window (ms); "
                                    "the worst load process's", labels=["scenario", "op", "outcome", "quantile"])
        cpu = GaugeMetricFamily("counterbench_load_cpu_ratio", "a load process's share of one core, last window",
                                labels=["scenario", "worker"])
        cpu_s = CounterMetricFamily("counterbench_load_cpu_seconds", "a load process's CPU so far",
                                    labels=["scenario", "worker"])
        counts: dict[tuple[str, str], int] = {}
        worst: dict[tuple[str, str, str], float] = {}
        for process, doc in w.folder.progress().items():
            for tag, n in doc.get("counts", {}).items():
                t = Tag.parse(tag)
                if t.measure == SERVICE:
                    counts[t.op, t.outcome] = counts.get((t.op, t.outcome), 0) + int(n)
            for tag, figures in (doc.get("last_window_ms") or {}).items():
                t = Tag.parse(tag)
                if t.measure == SERVICE:
                    for name, q in QUANTILES:
                        if name in figures:
                            k = (t.op, t.outcome, q)
                            worst[k] = max(worst.get(k, 0.0), float(figures[name]))
            if "cpu" in doc:
                cpu.add_metric([s, process], float(doc["cpu"]))
                cpu_s.add_metric([s, process], float(doc.get("cpu_seconds", 0.0)))
        for (op, outcome), n in sorted(counts.items()):
            ops.add_metric([s, op, outcome], n)
        for (op, outcome, q), v in sorted(worst.items()):
            latency.add_metric([s, op, outcome, q], v)
        found = CounterMetricFamily("counterbench_violations", "violations the online checks proved so far",
                                    labels=["scenario", "check"])
        for check, n in sorted(w.violations().items()):
            found.add_metric([s, check], n)
        workers = GaugeMetricFamily("counterbench_workers", "a distributed run's workers", labels=["scenario", "state"])
        roster = w.folder.roster()
        if roster:
            workers.add_metric([s, "connected"], len(roster.get("connected", [])))
            workers.add_metric([s, "expected"], int(roster.get("expected") or 0))
        info = GaugeMetricFamily("counterbench_run_info", "1 while a run's load goes on", labels=["scenario", "run_id"])
        info.add_metric([s, w.folder.path.name], 1)
        yield from (ops, latency, found, cpu, cpu_s, workers, info)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """``/metrics`` on ``host:port`` for as long as the command runs; ``watch`` says which run it shows."""

    def __init__(self, *, host: str, port: int) -> None:
        self._collector = _Collector()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self._collector)  # type: ignore[arg-type]
        self._server: WSGIServer = make_server(host, port, make_wsgi_app(registry), handler_class=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="cb-metrics", daemon=True)
        self._thread.start()

    def watch(self, watched: Watched | None) -> None:
        self._collector.watched = watched

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
