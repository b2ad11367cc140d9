"""compose/docker-compose.yml is the docker runtime's own plan, written out."""

from __future__ import annotations

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
    assert len(document["volumes"]) == len(PARTS) + 1  # a database each, and the broker's
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
