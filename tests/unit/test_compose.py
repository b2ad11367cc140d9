"""compose/docker-compose.yml is the docker runtime's own plan, written out."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML

from shopctl.runtimes.compose import compose_document, render
from shopctl.runtimes.docker import DockerPlan
from shopctl.settings import SandboxSettings
from shopctl.stack import PARTS, replica_of

COMPOSE = Path(__file__).parents[2] / "compose" / "docker-compose.yml"


def test_committed_compose_file_matches_the_stack_description():
    assert COMPOSE.read_text() == render(), (
        "compose/docker-compose.yml drifted: regenerate it with "
        "`shopctl compose > compose/docker-compose.yml`"
    )


def test_compose_file_has_every_part_with_its_database_and_health_check():
    document = YAML(typ="safe").load(COMPOSE.read_text())
    services = document["services"]
    for part in PARTS:
        service = services[part.name]
        assert service["image"] == "shop-app:dev"
        assert service["healthcheck"]["test"][0] == "CMD"
        # no depends_on: a service waits for its database and the broker itself
        assert "depends_on" not in service
        assert services[f"postgres-{part.name}"]["environment"]["POSTGRES_DB"] == part.database
        env = service["environment"]
        assert env["SHOP_DATABASE_URL"].endswith(f"@shop-postgres-{part.name}:5432/{part.database}")
        assert env["SHOP_BROKER_URL"] == "amqp://guest:guest@shop-rabbitmq:5672/"
    assert services["gateway"]["ports"] == ["127.0.0.1:8080:8000"]
    published = [s for s in services.values() if s.get("ports")]
    assert all(p.startswith("127.0.0.1:") for s in published for p in s["ports"])
    # a database each, the broker's, the spans and Prometheus' data
    assert len(document["volumes"]) == len(PARTS) + 3
    assert services["rabbitmq"]["volumes"] == ["shop-rabbitmq:/var/lib/rabbitmq"]
    assert services["rabbitmq"]["hostname"] == "rabbitmq"
    max_connections = services["postgres-order"]["command"]
    assert max_connections[:2] == ["postgres", "-c"] and max_connections[2].startswith("max_conn")


def test_the_plan_follows_settings():
    settings = SandboxSettings.model_construct(
        gateway_port=9090,
        images="local",
        project="demo",
        rabbitmq_management_port=15999,
    )
    plan = DockerPlan(settings)
    assert plan.gateway().ports == {"8000/tcp": ("127.0.0.1", 9090)}
    assert plan.rabbitmq().image == "shop/rabbitmq:local"
    assert plan.rabbitmq().name == "demo-rabbitmq"
    assert compose_document(settings)["networks"]["default"]["name"] == "demo-net"


def test_replicas_are_more_containers_of_a_service_on_a_bigger_database():
    """`up --runtime docker --replicas inventory=2,payment=3`: inventory-2,
    payment-2 and payment-3 run the same image, command and settings as the
    first of each, publish nothing, and each database is sized for all of
    its service's processes."""
    plain = DockerPlan(SandboxSettings.model_construct())
    plan = DockerPlan(SandboxSettings.model_construct(replicas="inventory=2,payment=3"))
    parts = [spec.part for spec in plan.all()]
    assert set(parts) - {s.part for s in plain.all()} == {"inventory-2", "payment-2", "payment-3"}
    first = next(s for s in plan.all() if s.part == "inventory")
    second = next(s for s in plan.all() if s.part == "inventory-2")
    assert second.name == "shop-inventory-2" and second.ports == {}
    assert (second.image, second.command, second.environment) == (
        first.image,
        first.command,
        first.environment,
    )

    def max_connections(p: DockerPlan, service: str) -> int:
        spec = next(s for s in p.infrastructure() if s.part == f"postgres-{service}")
        assert spec.command is not None
        return int(spec.command[-1].split("=")[1])

    one = max_connections(plain, "payment")
    per_process = plan.budget().per_process
    assert max_connections(plan, "payment") == one + 2 * per_process
    assert max_connections(plan, "inventory") == one + per_process
    assert max_connections(plan, "cart") == one
    # later commands find the replicas by their containers' part labels
    assert replica_of("inventory-2") == ("inventory", 2)
    assert replica_of("postgres-inventory") == ("postgres-inventory", 1)
    assert replica_of("gateway") == ("gateway", 1)


def test_prometheus_and_grafana_come_with_their_configuration_as_compose_configs():
    """Prometheus scrapes every replica by container name with the shop's
    rules; Grafana gets the datasource and the dashboard. Both carry their
    files in the compose file itself, `$` escaped from compose's own
    variables, so the file names no path of the machine it was made on."""
    plan = DockerPlan(SandboxSettings.model_construct(replicas="payment=2"))
    spec = plan.prometheus()
    config = json.loads(spec.files["/etc/shop/prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["payment"]["static_configs"][0]["targets"] == [
        "shop-payment:8000",
        "shop-payment-2:8000",
    ]
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["shop-rabbitmq:15692"]
    assert config["rule_files"] == ["/etc/shop/rules.yml"]
    assert "ShopSagaOverdue" in spec.files["/etc/shop/rules.yml"]
    assert spec.ports == {"9090/tcp": ("127.0.0.1", 9090)}
    # a container is made again when its files change, and only then: one
    # without files carries no files label (a running broker stays as it is)
    assert plan.rabbitmq().labels() == {"shop.part": "rabbitmq"}
    assert spec.labels()["shop.files"] == spec.files_hash()
    assert (
        spec.files_hash() != DockerPlan(SandboxSettings.model_construct()).prometheus().files_hash()
    )

    document = YAML(typ="safe").load(COMPOSE.read_text())
    grafana = document["services"]["grafana"]
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://shop-prometheus:9090"
    sources = {c["target"]: c["source"] for c in grafana["configs"]}
    datasource = document["configs"][sources["/etc/grafana/provisioning/datasources/shop.yml"]]
    assert "url: $${PROMETHEUS_URL}" in datasource["content"]  # compose reads $$ as $
    dashboard = document["configs"][sources["/var/lib/grafana/dashboards/shop/shop.json"]]
    assert json.loads(dashboard["content"].replace("$$", "$"))["uid"]
    rules = document["configs"]["prometheus-shop-rules.yml"]["content"].replace("$$", "$")
    assert rules == (COMPOSE.parents[1] / "observability/prometheus/rules.yml").read_text()

    # SHOP_PROMETHEUS=false: neither
    off = DockerPlan(SandboxSettings.model_construct(prometheus=False))
    assert {s.part for s in off.all()} & {"prometheus", "grafana"} == set()


def test_a_named_trace_backend_is_a_container_the_parts_export_to():
    """SHOP_IMAGE_TRACES=jaegertracing/all-in-one:…: one more container,
    its UI published on 127.0.0.1, every part's OTLP endpoint pointed at it
    by container name; without it, none, and the parts write span files."""
    plain = DockerPlan(SandboxSettings.model_construct())
    assert "traces" not in {s.part for s in plain.all()}
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in plain.gateway().environment
    assert plain.gateway().environment["SHOP_SPANS_DIR"] == "/var/lib/shop/spans"

    plan = DockerPlan(
        SandboxSettings.model_construct(image_traces="jaegertracing/all-in-one:1.62.0")
    )
    traces = next(s for s in plan.all() if s.part == "traces")
    assert traces.image == "jaegertracing/all-in-one:1.62.0"
    assert traces.ports == {"16686/tcp": ("127.0.0.1", 16686)} and traces.probe_port == 4318
    for spec in [*plan.services(), plan.gateway()]:
        assert spec.environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://shop-traces:4318"
