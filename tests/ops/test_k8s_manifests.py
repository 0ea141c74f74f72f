"""deploy/k8s holds together: everything the Deployment references exists, and its config is valid."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from bindings.api import create_app
from bindings.config import ENV_PATTERN, parse_config
from bindings.engine import Engine
from bindings.metrics import Metrics
from bindings.registry import Registry
from tests.ops.scanners import K8S, kustomize
from tests.ops.support import REPO


def documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml" for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(kind: str) -> dict[str, Any]:
    found = [doc for doc in documents() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    return one("Deployment")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    assert len(pod["containers"]) == 1
    return pod["containers"][0]  # type: ignore[no-any-return]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container["env"]}


def config_text() -> str:
    return one("ConfigMap")["data"]["config.yaml"]  # type: ignore[no-any-return]


def test_kustomization_lists_every_manifest_and_only_those(container: dict[str, Any]) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert {doc["kind"] for doc in documents()} == {"Namespace", "ServiceAccount", "Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}
    assert one("Namespace")["metadata"]["name"] == kustomization["namespace"]
    assert [image["name"] for image in kustomization["images"]] == [container["image"].split(":")[0]]


def test_config_is_mounted_as_a_directory_at_the_path_the_connector_reads(pod: dict[str, Any], container: dict[str, Any]) -> None:
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    config_volume = next(name for name, volume in volumes.items() if "configMap" in volume)
    mount = mounts[config_volume]
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap edits"
    configmap = one("ConfigMap")
    assert volumes[config_volume]["configMap"]["name"] == configmap["metadata"]["name"]
    config_path = env_of(container)["KUBEMQ_S3_CONFIG"]["value"]
    directory, key = config_path.rsplit("/", 1)
    assert (directory, key in configmap["data"]) == (mount["mountPath"], True)


def test_every_secret_and_configmap_reference_exists(container: dict[str, Any]) -> None:
    secrets = {doc["metadata"]["name"]: {**doc.get("stringData", {}), **doc.get("data", {})} for doc in documents() if doc["kind"] == "Secret"}
    maps = {doc["metadata"]["name"]: doc["data"] for doc in documents() if doc["kind"] == "ConfigMap"}
    references = [entry["valueFrom"] for entry in container["env"] if "valueFrom" in entry]
    assert any("secretKeyRef" in ref for ref in references)
    for ref in references:
        for kind, known in (("secretKeyRef", secrets), ("configMapKeyRef", maps)):
            if kind in ref:
                assert ref[kind]["key"] in known.get(ref[kind]["name"], {}), f"{kind} {ref[kind]} does not exist"
    for source in container.get("envFrom", []):
        assert source.get("secretRef", source.get("configMapRef"))["name"] in {**secrets, **maps}


def test_the_configmap_config_passes_validate_with_the_pods_environment(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.app import registry

    text = config_text()
    provided = set(env_of(container))
    needed = {match.group(1) for match in ENV_PATTERN.finditer(text) if match.group(1) and match.group(2) is None}
    assert needed <= provided, f"the config reads variables the pod does not set: {sorted(needed - provided)}"
    for name, entry in env_of(container).items():
        monkeypatch.setenv(name, entry.get("value", f"dummy-{name.lower()}"))  # the pod's literal value, or a stand-in
    config = parse_config(text, registry())
    (binding,) = config.bindings
    assert binding.source.properties.group, "replicas share requests only through a query group"
    assert binding.source.properties.address == "kubemq-cluster-grpc.kubemq:50000"
    assert re.fullmatch(r"\$\{[A-Z_]+\}", yaml.safe_load(text)["bindings"][0]["target"]["properties"]["aws_secret_key"]), "secrets come from the environment"


def test_ports_and_probes_point_at_what_the_api_serves(container: dict[str, Any]) -> None:
    settings = yaml.safe_load(config_text())
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": settings["apiPort"]}
    routes = {route.resource.canonical for route in create_app(Engine(Registry(), Metrics()), dict).router.routes() if route.resource is not None}
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert (probes["livenessProbe"]["path"], probes["readinessProbe"]["path"]) == ("/health", "/ready")
    for probe in probes.values():
        assert probe["path"] in routes
        assert probe["port"] in ports or probe["port"] in ports.values()
    service = one("Service")
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ports
    annotations = service["metadata"]["annotations"]
    assert (annotations["prometheus.io/scrape"], int(annotations["prometheus.io/port"]), annotations["prometheus.io/path"]) == ("true", settings["apiPort"], "/metrics")
    assert "/metrics" in routes


def test_selectors_and_targets_match_the_deployment(pod: dict[str, Any]) -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one("Service")["spec"]["selector"].items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert [metric["resource"]["name"] for metric in hpa["metrics"]] == ["cpu"]
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] < hpa["minReplicas"]
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]


def test_shutdown_fits_in_the_grace_period_and_the_pod_is_locked_down(pod: dict[str, Any], container: dict[str, Any]) -> None:
    settings = yaml.safe_load(config_text())
    assert settings["drainTimeoutSeconds"] < pod["terminationGracePeriodSeconds"]
    assert (pod["securityContext"]["runAsNonRoot"], pod["securityContext"]["runAsUser"]) == (True, 10001)
    assert (pod["securityContext"]["seccompProfile"]["type"], pod["automountServiceAccountToken"]) == ("RuntimeDefault", False)
    security = container["securityContext"]
    assert (security["readOnlyRootFilesystem"], security["allowPrivilegeEscalation"], security["capabilities"]["drop"]) == (True, False, ["ALL"])
    tmp = next(mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp")
    assert "emptyDir" in next(volume for volume in pod["volumes"] if volume["name"] == tmp["name"])
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
    assert _mebibytes(resources["limits"]["memory"]) >= 4 * 400  # max_concurrency 4 x about 400 MiB per 100 MiB request


def _mebibytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def _ports(rule: dict[str, Any]) -> list[tuple[int | str, str]]:
    return [(port["port"], port["protocol"]) for port in rule["ports"]]


def test_the_network_policy_admits_only_the_scraper_and_lets_out_only_kubemq_s3_and_dns(container: dict[str, Any]) -> None:
    policy = one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= one("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert _ports(ingress) == [("http", "TCP")] and "http" in {port["name"] for port in container["ports"]}
    assert all(peer.get("namespaceSelector") and peer.get("podSelector") for peer in ingress["from"]), "an empty selector would admit every namespace or pod"
    kubemq, s3, dns = policy["egress"]
    host, port = yaml.safe_load(config_text())["bindings"][0]["source"]["properties"]["address"].rsplit(":", 1)
    assert _ports(kubemq) == [(int(port), "TCP")]
    assert [peer["namespaceSelector"]["matchLabels"] for peer in kubemq["to"]] == [{"kubernetes.io/metadata.name": host.split(".")[1]}]
    assert (_ports(s3), s3["to"]) == ([(443, "TCP")], [{"ipBlock": {"cidr": "0.0.0.0/0"}}])
    assert sorted(_ports(dns)) == [(53, "TCP"), (53, "UDP")]
    assert [peer["podSelector"]["matchLabels"] for peer in dns["to"]] == [{"k8s-app": "kube-dns"}]


def test_the_documented_overlay_renders_and_changes_what_it_says(tmp_path: Path) -> None:
    """The overlay in docs/operations.md ("NetworkPolicy"), next to a copy of deploy/k8s, through kubectl kustomize."""
    docs = (REPO / "docs" / "operations.md").read_text()
    (overlay,) = re.findall(r"```yaml\n(# deploy/overlays/production/kustomization.yaml\n.*?)```", docs, re.DOTALL)
    shutil.copytree(K8S, tmp_path / "k8s")
    (tmp_path / "overlays" / "production").mkdir(parents=True)
    (tmp_path / "overlays" / "production" / "kustomization.yaml").write_text(overlay)
    rendered = kustomize(tmp_path / "overlays" / "production")
    policy = next(doc for doc in rendered if doc["kind"] == "NetworkPolicy")["spec"]
    assert policy["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "observability"}
    assert policy["egress"][:3] == one("NetworkPolicy")["spec"]["egress"], "the rules it does not patch stay"
    assert _ports(policy["egress"][3]) == [(4317, "TCP")]
    operator_kinds = [doc for doc in rendered if doc["apiVersion"].startswith("monitoring.coreos.com/")]
    assert sorted(doc["kind"] for doc in operator_kinds) == ["PrometheusRule", "ServiceMonitor"]
    assert all(doc["metadata"]["labels"]["release"] == "prometheus" for doc in operator_kinds)
    assert next(doc for doc in rendered if doc["kind"] == "Deployment")["spec"] == one("Deployment")["spec"]


def test_the_secret_is_only_placeholders() -> None:
    values = one("Secret")["stringData"].values()
    assert all(value == "" or value.startswith("REPLACE_WITH_") for value in values)


def test_example_configs_carry_the_schema_hint() -> None:
    configs = sorted((REPO / "deploy").glob("*/*.yaml"))
    examples = [path for path in configs if path.parent.name != "k8s"]
    assert examples
    for path in examples:
        assert path.read_text().startswith("# yaml-language-server: $schema=../../config.schema.json\n"), path
    assert (REPO / "config.schema.json").is_file()
