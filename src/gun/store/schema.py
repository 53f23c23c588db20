"""The store's tables (SQLAlchemy Core). Alembic migrations in `migrations/` build exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def _app_fk() -> ForeignKey:
    return ForeignKey("apps.id", ondelete="CASCADE")


apps = Table(
    "apps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(30), nullable=False, unique=True),
    Column("repo", Text),
    Column("generation", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # the token of the app's ingest URL on the platform's drain (drains.ingest)
    Column("ingest_token_hash", String(64), unique=True),
    Column("ingest_token_sealed", Text),
)

layers = Table(
    "layers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    Column("name", String(30), nullable=False),
    Column("types", JSON),  # null: every process type
    Column("setup", Text),  # run once on each new instance of the layer, before anything else
    Column("teardown", Text),  # run once on an instance when it is deleted
    Column("provider", String(20)),  # the provider of its instances; null: local
    Column("settings", JSON),  # that provider's settings (ec2: ami, subnet, ...); or null
    UniqueConstraint("app_id", "name"),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(20), primary_key=True),  # i-0a1b2c3d
    Column("app_id", _app_fk(), nullable=False),
    Column("layer", String(30), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("instance_type", String(40)),
    Column("availability_zone", String(40)),
    Column("address", Text),
    Column("state", String(20), nullable=False),
    Column("token_id", ForeignKey("tokens.id", ondelete="SET NULL")),
    Column("last_heartbeat", DateTime(timezone=True)),
    Column("problem", Text),  # why its agent cannot run the current release, as it reported
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("host", String(30)),  # provider ssh: the registered host it runs on
    Column("setup", Text),  # its layer's setup command when it was made: run once, by its agent
    Column("setup_state", String(20)),  # running, succeeded or failed, as its agent reported
    Column("setup_output", Text),  # what the setup printed (its end), as its agent reported
    Column("cloud_id", String(40)),  # provider ec2: its EC2 instance id
    Column("cloud_state", String(20)),  # provider ec2: the state EC2 last reported
    Column("ip", String(45)),  # where routers reach its web processes, as its agent reported
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(30), nullable=False, unique=True),
    Column("user", String(32), nullable=False),
    Column("address", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("root", Text, nullable=False),
    Column("key_sealed", Text),  # the private key meta reaches it with, encrypted; or null
    Column("known_host", Text, nullable=False),  # its host key, pinned when it was added
    Column("python", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

slugs = Table(
    "slugs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("process_types", JSON),
    Column("commit", String(64)),
    Column("commit_description", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

releases = Table(
    "releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("slug_id", ForeignKey("slugs.id", ondelete="SET NULL")),
    Column("process_types", JSON),  # from the slug's Procfile; null before the first deploy
    Column("commit", String(64)),
    Column("config_sealed", Text, nullable=False),  # Fernet of the JSON config snapshot
    Column("actor", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("app_id", "version"),
)

builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    # pending (queued), building, releasing (release phase), succeeded, failed
    Column("status", String(20), nullable=False),
    Column("strategy", String(10), nullable=False),  # slug or git
    Column("ref", Text),
    Column("commit", String(64)),
    Column("commit_description", Text),
    Column("slug_id", ForeignKey("slugs.id", ondelete="SET NULL")),
    Column("release", Integer),
    Column("output", Text, nullable=False, default=""),
    Column("error", Text),
    Column("actor", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

config_vars = Table(
    "config_vars",
    metadata,
    Column("app_id", _app_fk(), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value_sealed", Text, nullable=False),
)

formation = Table(
    "formation",
    metadata,
    Column("app_id", _app_fk(), primary_key=True),
    Column("type", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
)

processes = Table(
    "processes",
    metadata,
    Column("app_id", _app_fk(), primary_key=True),
    Column("name", String(80), primary_key=True),  # web.1
    Column("type", String(64), nullable=False),
    # desired: where placement put it, and whether it should still run
    Column("instance_id", ForeignKey("instances.id", ondelete="SET NULL")),
    Column("desired", Boolean, nullable=False, default=True),
    Column("nonce", Integer, nullable=False, default=0),  # bumped to ask for a restart
    # observed, as the instance's agent last reported it
    Column("release", Integer),
    Column("state", String(20), nullable=False),  # starting, up, crashed, stopping, down
    Column("port", Integer),
    Column("pid", Integer),
    Column("restarts", Integer, nullable=False, default=0),
    Column("exit_code", Integer),
    Column("since", DateTime(timezone=True)),
    Column("reported_at", DateTime(timezone=True)),
    # a rollout lease: until then its agent may have it down for a replacement (the per-type
    # budget of unavailable processes is counted across instances with these)
    Column("replacing_until", DateTime(timezone=True)),
)

drains = Table(
    "drains",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    Column("url", Text, nullable=False),
    Column("token", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    Column("hostname", String(253), nullable=False, unique=True),  # custom ones; one app each
    Column("created_at", DateTime(timezone=True), nullable=False),
)

certs = Table(
    "certs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", _app_fk(), nullable=False),
    Column("hostnames", JSON, nullable=False),  # the app's hostnames it covers; one cert each
    Column("chain_pem", Text, nullable=False),  # leaf first, then intermediates
    Column("key_sealed", Text, nullable=False),  # its private key, encrypted
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # sha256 of the leaf's DER, hex
    Column("issuer", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("app_id", _app_fk(), primary_key=True),
    Column("number", Integer, primary_key=True),  # run.N
    Column("instance_id", ForeignKey("instances.id", ondelete="SET NULL")),
    Column("release", Integer, nullable=False),
    Column("command", Text, nullable=False),
    Column("owner", Text, nullable=False),  # the token's name that started it
    Column("attached", Boolean, nullable=False),
    Column("tty", Boolean, nullable=False),
    Column("framing", String(8), nullable=False),  # gun or raw (gun.rendezvous.Framing)
    Column("term", String(64)),
    Column("cols", Integer),
    Column("lines", Integer),
    Column("ttl", Float, nullable=False),  # seconds it may run
    Column("secret_hash", String(64)),  # sha256 of its client's secret, until used
    Column("state", String(20), nullable=False),  # starting, up, complete
    Column("exit_code", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)
Index("runs_secret", runs.c.secret_hash, unique=True)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("app_id", _app_fk()),
    Column("kind", String(20), nullable=False, default="user"),  # user, instance or drain
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_by", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),  # null: never
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", ForeignKey("apps.id", ondelete="SET NULL")),
    Column("app_name", String(30)),
    Column("actor", String(100), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Index("events_app_created", events.c.app_id, events.c.created_at)
# a live token's name names it (`gun tokens.revoke:NAME`); revoked ones keep theirs
Index(
    "tokens_live_name",
    tokens.c.name,
    unique=True,
    sqlite_where=tokens.c.revoked.is_(False),
    postgresql_where=tokens.c.revoked.is_(False),
)
Index("builds_app_status", builds.c.app_id, builds.c.status)
Index("releases_app_version", releases.c.app_id, releases.c.version)
