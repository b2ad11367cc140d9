"""One settings object per service process, read from the environment."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EVENTS_EXCHANGE = "shop.events"
DEAD_LETTER_EXCHANGE = "shop.dlx"


class ServiceSettings(BaseSettings):
    """What a service needs to run: its name, its database, the broker and the
    knobs of the messaging core. Every field reads ``SHOP_<FIELD>``; the
    defaults are the sandbox's (local PostgreSQL and RabbitMQ)."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", extra="ignore")

    service_name: str = "service"
    instance_id: str = Field(
        default="", description="set by the supervisor; /readyz and /healthz answer with it"
    )
    spans_dir: str = Field(
        default="",
        description="with no OTEL_EXPORTER_OTLP_ENDPOINT, write spans there as OTLP-JSON "
        "lines, one file a process (the sandbox sets it; empty: no spans)",
    )
    database_url: str = ""
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    events_exchange: str = EVENTS_EXCHANGE
    dead_letter_exchange: str = DEAD_LETTER_EXCHANGE

    db_pool_size: int = Field(
        default=10, ge=1, description="pooled connections the consumer's handlers use at once"
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        description="more pooled connections for requests and the relay (all kept once opened)",
    )
    db_pre_ping: bool = Field(
        default=True, description="ping a pooled connection before use (a round trip)"
    )
    db_ping_after_idle_s: float = Field(
        default=1.0,
        ge=0,
        description="ping only a connection idle this long (0: every checkout)",
    )
    db_pool_timeout_s: float = Field(
        default=2.0, gt=0, description="wait for a pooled connection before answering 503"
    )
    db_startup_timeout_s: float = Field(
        default=60.0, ge=0, description="how long a starting service waits for its database"
    )
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=0)

    prefetch: int = Field(default=32, ge=1)
    batch_max: int = Field(
        default=1,
        ge=1,
        le=256,
        description="a consumer handles up to this many deliveries already waiting on a queue "
        "in one transaction, a savepoint each, acked together (1: one at a time)",
    )
    batch_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="how long a batch waits for more deliveries before it starts, when fewer "
        "than batch_max are waiting (0: never; one message alone goes at once)",
    )
    batch_parallel: int = Field(
        default=2,
        ge=1,
        description="batches at work at once on one queue (more waiting ones join the next)",
    )
    max_attempts: int = Field(default=5, ge=1, description="handler attempts before dead-lettering")
    retry_base_delay_ms: int = Field(default=200, ge=1)
    retry_max_delay_ms: int = Field(default=30_000, ge=1)
    delivery_limit: int = Field(
        default=20,
        ge=1,
        description="broker-side backstop for messages that crash the consumer before it can act",
    )
    publish_timeout_s: float = Field(default=5.0, gt=0)
    reconnect_interval_s: float = Field(default=1.0, gt=0)
    broker_handshake_timeout_s: float = Field(
        default=10.0, gt=0, description="TCP connect plus the AMQP handshake, per attempt"
    )
    broker_startup_timeout_s: float = Field(
        default=60.0, ge=0, description="how long a starting service waits for the broker"
    )

    outbox_batch_size: int = Field(default=200, ge=1)
    outbox_lease_s: float = Field(
        default=10.0, gt=0, description="how long a relay owns claimed rows"
    )
    outbox_poll_interval_s: float = Field(default=2.0, gt=0, description="safety-net sweep")
    outbox_failure_backoff_s: float = Field(default=1.0, gt=0)
    outbox_mark_delay_s: float = Field(
        default=0.1,
        ge=0,
        description="confirmed rows wait up to this long to be marked sent together (0: at once)",
    )

    outbox_keep_s: float = Field(
        default=3600.0,
        gt=0,
        description="published outbox rows move to the saga history after this long",
    )
    history_keep_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="the saga history (what `shopctl why` and `trace --since` read of an old "
        "order) is deleted after this long",
    )
    inbox_keep_s: float = Field(
        default=86_400.0,
        gt=0,
        description="records of handled events are deleted after this long; a copy that came "
        "later would be handled again",
    )
    prune_interval_s: float = Field(
        default=300.0, gt=0, description="how often the messaging tables are pruned"
    )

    internal_port: int = Field(
        default=9000,
        ge=1,
        le=65535,
        description="outside sandbox mode, /metrics and /inflight are served here alone",
    )
    internal_host: str = "0.0.0.0"
    fault_injection: bool = Field(
        default=False,
        description="sandbox mode: obey faults switched on the control exchange (never in prod)",
    )

    shutdown_grace_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _default_database_url(self) -> ServiceSettings:
        if not self.database_url:
            name = self.service_name
            self.database_url = f"postgresql+psycopg://shop_{name}@127.0.0.1:5432/shop_{name}"
        return self

    @model_validator(mode="after")
    def _mark_well_inside_the_lease(self) -> ServiceSettings:
        # rows waiting to be marked sent are kept from sweeps by their lease
        if self.outbox_mark_delay_s > self.outbox_lease_s / 4:
            raise ValueError(
                f"outbox_mark_delay_s ({self.outbox_mark_delay_s}) must be at most a quarter "
                f"of outbox_lease_s ({self.outbox_lease_s})"
            )
        return self

    @model_validator(mode="after")
    def _inbox_outlives_every_copy(self) -> ServiceSettings:
        # a copy comes again within a relay's lease or a retry's delay;
        # the inbox must still know the event then, many times over
        floor = 10 * max(self.outbox_lease_s, self.retry_max_delay_ms / 1000)
        if self.inbox_keep_s < floor:
            raise ValueError(
                f"inbox_keep_s ({self.inbox_keep_s}) must be at least {floor:g} s: ten times "
                "the longer of outbox_lease_s and retry_max_delay_ms, within which a copy of "
                "a handled event can come again"
            )
        return self

    def retry_delay_ms(self, attempt: int) -> int:
        """Delay before attempt ``attempt + 1`` after attempt ``attempt`` failed."""
        return min(self.retry_base_delay_ms * 2 ** (attempt - 1), self.retry_max_delay_ms)
