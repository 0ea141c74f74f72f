"""deploy/k8s/monitoring: an opt-in component whose ServiceMonitor, alerts and dashboard query only what the connector exports.

The Prometheus Operator's kinds have no schema in kubernetes-validate, so their
structure is checked here; their PromQL is read with a real parser, and the
metric names are compared with the ``/metrics`` of a connector process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.kubemq import free_port
from tests.ops import promql
from tests.ops.scanners import K8S, copy_with_monitoring, kustomize
from tests.ops.support import REPO, connector_process, get_text, write_config

MONITORING = K8S / "monitoring"
OPERATOR_API = "monitoring.coreos.com/v1"
# `{{ $labels.binding }}` in an alert's text, `{{binding}}` in a panel's legend.
ALERT_LABEL = re.compile(r"\$labels\.(\w+)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")
# Sample names of a metric family, by its type (prometheus_client strips `_total` from a counter's family name).
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"), "info": ("_info",)}


def dashboard() -> dict[str, Any]:
    return json.loads((MONITORING / "dashboard.json").read_text())  # type: ignore[no-any-return]


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def variable_selectors() -> list[str]:
    """The PromQL inside each query variable's ``label_values(selector, label)``."""
    found = []
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"]["query"])
            assert match, f"variable {variable['name']}: only label_values(selector, label) is checked"
            found.append(match.group(1))
    return found


def rules() -> list[dict[str, Any]]:
    resource = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [rule for group in resource["spec"]["groups"] for rule in group["rules"]]


def queried_metrics() -> set[str]:
    expressions = [target["expr"] for panel in panels() for target in panel["targets"]] + variable_selectors() + [rule["expr"] for rule in rules()]
    return set().union(*(promql.metric_names(expression) for expression in expressions))


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [doc for doc in documents if doc["kind"] == kind and name in (None, doc["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize(K8S)


@pytest.fixture(scope="module")
def with_monitoring(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return kustomize(copy_with_monitoring(tmp_path_factory.mktemp("monitoring")))


def test_monitoring_is_an_opt_in_component_adding_a_monitor_rules_and_a_dashboard(base: list[dict[str, Any]], with_monitoring: list[dict[str, Any]]) -> None:
    component = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    identity = [(doc["kind"], doc["metadata"]["name"]) for doc in base]
    assert not any(doc["apiVersion"] == OPERATOR_API for doc in base), "the base must apply where the operator's CRDs are absent"
    added = [doc for doc in with_monitoring if (doc["kind"], doc["metadata"]["name"]) not in identity]
    assert sorted((doc["kind"], doc["metadata"]["name"]) for doc in added) == [("ConfigMap", "kubemq-s3-dashboard"), ("PrometheusRule", "kubemq-s3"), ("ServiceMonitor", "kubemq-s3")]
    assert {doc["metadata"]["namespace"] for doc in added} == {one(base, "Namespace")["metadata"]["name"]}
    configmap = one(added, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    ((key, text),) = configmap["data"].items()
    assert key.endswith(".json") and json.loads(text) == dashboard()


def test_the_service_monitor_scrapes_metrics_on_the_port_the_network_policy_opens(with_monitoring: list[dict[str, Any]]) -> None:
    monitor = one(with_monitoring, "ServiceMonitor")
    assert monitor["apiVersion"] == OPERATOR_API
    services = [doc for doc in with_monitoring if doc["kind"] == "Service" and monitor["spec"]["selector"]["matchLabels"].items() <= doc["metadata"]["labels"].items()]
    assert [service["metadata"]["name"] for service in services] == ["kubemq-s3-metrics"]
    ((endpoint,), (service_port,)) = monitor["spec"]["endpoints"], services[0]["spec"]["ports"]
    assert (endpoint["port"], endpoint["path"]) == (service_port["name"], services[0]["metadata"]["annotations"]["prometheus.io/path"])
    assert promql_parser.parse_duration(endpoint["scrapeTimeout"]) < promql_parser.parse_duration(endpoint["interval"])
    policy = one(with_monitoring, "NetworkPolicy")
    assert [port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]] == [service_port["targetPort"]]
    scrapers = [peer["podSelector"]["matchLabels"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"app.kubernetes.io/name": "prometheus"} in scrapers


# What an operator is paged for, and how to recognise the alert's expression.
ALERT_CONCERNS: dict[str, Callable[[str], bool]] = {
    "a binding not ready": lambda expr: "kubemq_s3_binding_ready" in promql.metric_names(expr),
    "the error ratio": lambda expr: {"kubemq_s3_errors_total", "kubemq_s3_requests_total"} <= promql.metric_names(expr),
    "the p99 latency": lambda expr: "histogram_quantile(0.99," in expr and "kubemq_s3_request_duration_seconds_bucket" in promql.metric_names(expr),
    "a refused config reload": lambda expr: "kubemq_s3_config_last_reload_successful" in promql.metric_names(expr),
    "dead letters": lambda expr: "kubemq_s3_queue_outcomes_total" in promql.metric_names(expr) and 'outcome="dead_lettered"' in expr,
    "dropped log lines": lambda expr: "kubemq_s3_log_lines_dropped_total" in promql.metric_names(expr),
    "undelivered replies": lambda expr: "kubemq_s3_replies_undelivered_total" in promql.metric_names(expr),
    "objects a bucket source cannot send": lambda expr: "kubemq_s3_source_oldest_pending_seconds" in promql.metric_names(expr),
}


def test_alert_rules_are_well_formed_and_page_on_what_matters() -> None:
    resource = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert (resource["apiVersion"], resource["kind"]) == (OPERATOR_API, "PrometheusRule")
    assert all(group["name"] and group["rules"] for group in resource["spec"]["groups"])
    names = [rule["alert"] for rule in rules()]
    assert len(set(names)) == len(names) and all(re.fullmatch(r"KubemqS3[A-Z]\w+", name) for name in names)
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        kept = promql.output_labels(rule["expr"])
        named = set(ALERT_LABEL.findall(rule["annotations"]["summary"] + rule["annotations"]["description"]))
        assert kept is not None and named <= kept, f"{rule['alert']} names labels its expression aggregates away: {sorted(named - (kept or set()))}"
    for concern, covers in ALERT_CONCERNS.items():
        assert any(covers(rule["expr"]) for rule in rules()), f"no alert on {concern}"
    monitoring_docs = (REPO / "docs" / "operations.md").read_text().split("\n## Monitoring with the Prometheus Operator and Grafana\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `(KubemqS3\w+)` \|", monitoring_docs, re.MULTILINE) == names, "docs/operations.md lists the alerts in the rule order its patch paths rely on"


# Each panel the brief asks for, recognised by the metrics it reads and the labels it keeps.
PANEL_CONCERNS: dict[str, Callable[[set[str], str, set[str]], bool]] = {
    "requests": lambda names, expr, labels: names == {"kubemq_s3_requests_total"},
    "errors by code": lambda names, expr, labels: "kubemq_s3_errors_total" in names and "code" in labels,
    "p99 latency": lambda names, expr, labels: "histogram_quantile(0.99," in expr,
    "p50 latency": lambda names, expr, labels: "histogram_quantile(0.5," in expr,
    "in-flight requests": lambda names, expr, labels: "kubemq_s3_in_flight_requests" in names,
    "config reloads": lambda names, expr, labels: "kubemq_s3_config_last_reload_success_timestamp_seconds" in names,
    "last reload refused": lambda names, expr, labels: "kubemq_s3_config_last_reload_successful" in names,
    "readiness": lambda names, expr, labels: "kubemq_s3_binding_ready" in names,
    "queue outcomes per binding and method": lambda names, expr, labels: "kubemq_s3_queue_outcomes_total" in names and {"binding", "method", "outcome"} <= labels,
    "dead letters per binding and method": lambda names, expr, labels: 'outcome="dead_lettered"' in expr and {"binding", "method"} <= labels,
    "dropped log lines": lambda names, expr, labels: "kubemq_s3_log_lines_dropped_total" in names,
}


def test_the_dashboard_is_well_formed_and_shows_what_the_connector_does() -> None:
    board = dashboard()
    assert board["uid"] and len(board["uid"]) <= 40 and board["title"] and board["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    for selector in variable_selectors():
        promql.parse(selector)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24 and box["h"] > 0, panel["title"]
        covered = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered
    found: dict[str, list[str]] = {concern: [] for concern in PANEL_CONCERNS}
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["title"] and panel["description"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(set(refs)) == len(refs)
        for target in panel["targets"]:
            expr = target["expr"]
            used = {name for name in promql.GRAFANA_VARIABLE.findall(expr) if not name.startswith("__")}
            assert used <= set(variables), f"{panel['title']}: undefined variables {used - set(variables)}"
            kept = promql.output_labels(expr)
            assert kept is not None, f"{panel['title']}: aggregate the series so the legend stays readable: {expr}"
            legend = set(LEGEND_LABEL.findall(target.get("legendFormat", "")))
            assert legend <= kept, f"{panel['title']}: the legend names labels the query drops: {sorted(legend - kept)}"
            for concern, shows in PANEL_CONCERNS.items():
                if shows(promql.metric_names(expr), expr, kept):
                    found[concern].append(panel["title"])
    assert [concern for concern, titles in found.items() if not titles] == []


def exported_sample_names(exposition: str) -> set[str]:
    """Every sample name a ``/metrics`` page can carry, families without samples yet included (their HELP/TYPE lines)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def connector_config(seaweed: Any) -> str:
    """One query and one queue binding on SeaweedFS: every kind of series the dashboard reads can exist."""

    def binding(name: str, kind: str) -> str:
        return f"""
  - name: {name}
    source:
      kind: {kind}
      properties:
        address: "{{broker}}"
        channel: "ops.monitoring.{name}"
    target:
      kind: aws.s3
      properties:
        aws_key: "{seaweed.access_key}"
        aws_secret_key: "{seaweed.secret_key}"
        endpoint: "{seaweed.endpoint}\""""

    return "apiPort: {api_port}\napiHost: 127.0.0.1\nlogFormat: json\ndrainTimeoutSeconds: 5\nbindings:" + binding("reads", "kubemq.query") + binding("jobs", "kubemq.queue") + "\n"


async def test_every_metric_the_dashboard_and_alerts_query_is_exported_by_a_running_connector(broker: Any, seaweed: Any, tmp_path: Path) -> None:
    path, port = tmp_path / "config.yaml", free_port()
    write_config(path, connector_config(seaweed), broker, port)
    async with connector_process(path, args=("--no-watch",)) as child:
        await child.wait_ready(f"http://127.0.0.1:{port}")
        status, exposition = await get_text(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    exported = exported_sample_names(exposition)
    assert {"kubemq_s3_requests_total", "kubemq_s3_request_duration_seconds_bucket", "kubemq_s3_binding_ready"} <= exported
    queried = queried_metrics()
    assert all(name.startswith("kubemq_s3_") for name in queried)
    assert sorted(queried - exported) == [], "queried by deploy/k8s/monitoring but not exported by the connector"
