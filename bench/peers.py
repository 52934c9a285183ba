"""`make bench PEERS=1`: the GraphQL peers, set up under var/bench-peers/ and checked against us.

PostGraphile 4 (one Node process) and strawberry-django with its query optimizer (two uvicorn
workers) serve a typed copy of the benchmark's rows (schema `peers` of the same database). Each
is installed from its registry at a pinned version the first time, and reused after that. Their
answers are compared with ours, after normalising ids, date-times and row order, before they are
measured.
"""

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import mean
from typing import Any

import httpx
import psycopg
from psycopg import sql
from run import (
    FIELDS,
    ROOT,
    BenchError,
    HttpResult,
    Probe,
    System,
    Workload,
    bench_url,
    fetch,
    free_port,
    libpq_url,
    run,
    started,
    workloads,
)

from trends_gql.core.fields import ImpactStrength, Steepl, TechnologyReadinessLevel
from trends_gql.core.models import TREND_TABLE, TRL_SCORES
from trends_gql.core.pagination import decode_id

PEERS_DIR = ROOT / "var" / "bench-peers"
SCHEMA = "peers"  # the typed copy: peers.trend
POSTGRAPHILE_VERSION = "4.14.1"
STRAWBERRY_DJANGO_VERSION = "0.93.0"
DJANGO_REQUIREMENTS = (
    "django==5.2.19",
    f"strawberry-graphql-django=={STRAWBERRY_DJANGO_VERSION}",
    "strawberry-graphql==0.341.2",
    "graphql-core==3.3.2",
    "psycopg[binary,pool]==3.3.9",
    # The HTTP stack of ours: uvicorn with uvloop and httptools.
    "uvicorn==0.54.0",
    "uvloop==0.23.0",
    "httptools==0.9.0",
)
DJANGO_WORKERS = 2
ENUMS = {
    "technology_readiness_level": TechnologyReadinessLevel,
    "impact_strength": ImpactStrength,
    "steepl": Steepl,
}
DATETIME_FIELDS = ("uploadedAt", "updatedAt")
NO_PAGE_LOADS = (
    "W5 (the dashboard's page loads) is measured on ours only: its requests ask for aggregates"
    " (megatrends, macrotrendReadiness, trendFacets) that the peers cannot answer."
)

# Our columns with their types, enums as PostgreSQL enums (what PostGraphile maps to GraphQL
# enums); the rows are copied from ours.
COPY_TABLE = """
CREATE TABLE {schema}.trend (
  id integer PRIMARY KEY,
  megatrend varchar(150) NOT NULL,
  macrotrend varchar(200) NOT NULL,
  challenges_and_research_gaps text NOT NULL,
  total_count_of_publications integer,
  total_count_of_patents integer,
  technology_readiness_level {schema}.technology_readiness_level,
  impact_strength {schema}.impact_strength NOT NULL,
  steepl {schema}.steepl NOT NULL,
  relevant_industries text,
  real_world_application_and_use_cases text,
  fingerprint bytea NOT NULL UNIQUE,
  uploaded_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
)"""
# Their filter is `megatrend = 'AI'` (ours `lower(megatrend) = lower('AI')`, which our
# lower(megatrend) index serves): the same index, for their expression.
COPY_INDEXES = ("CREATE INDEX ON {schema}.trend (megatrend)",)

DJANGO_FILES = {
    "peer/__init__.py": "",
    "peer/settings.py": """\
import os

SECRET_KEY = os.environ["PEER_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["peer"]
MIDDLEWARE = []
ROOT_URLCONF = "peer.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Pages of up to 500 rows, as ours (strawberry-django's default is 100).
STRAWBERRY_DJANGO = {"PAGINATION_DEFAULT_LIMIT": 500, "PAGINATION_MAX_LIMIT": 500}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PEER_DB_NAME"],
        "HOST": os.environ["PEER_DB_HOST"],
        "PORT": os.environ["PEER_DB_PORT"],
        "USER": os.environ["PEER_DB_USER"],
        "PASSWORD": os.environ["PEER_DB_PASSWORD"],
        # Django's connection pool (the advice for async views), the copy's schema first.
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 8}, "options": "-c search_path=peers"},
    }
}
""",
    "peer/models.py": """\
from django.db import models


class Trend(models.Model):
    id = models.AutoField(primary_key=True)
    megatrend = models.CharField(max_length=150)
    macrotrend = models.CharField(max_length=200)
    challenges_and_research_gaps = models.TextField()
    total_count_of_publications = models.IntegerField(null=True)
    total_count_of_patents = models.IntegerField(null=True)
    technology_readiness_level = models.CharField(max_length=16, null=True)
    impact_strength = models.CharField(max_length=16)
    steepl = models.CharField(max_length=16)
    relevant_industries = models.TextField(null=True)
    real_world_application_and_use_cases = models.TextField(null=True)
    uploaded_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "trend"
        ordering = ["id"]
""",
    "peer/schema.py": """\
import enum

import strawberry
import strawberry_django
from strawberry import auto
from strawberry_django.optimizer import DjangoOptimizerExtension

from peer import models


@strawberry.enum
class TechnologyReadinessLevel(enum.Enum):
    PILOT = "Pilot"
    DEVELOPMENT = "Development"
    DEPLOY = "Deploy"


@strawberry.enum
class ImpactStrength(enum.Enum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


@strawberry.enum
class Steepl(enum.Enum):
    S = "S"
    T = "T"
    E = "E"
    P = "P"
    L = "L"


@strawberry_django.filter_type(models.Trend)
class TrendFilter:
    megatrend: auto


@strawberry_django.type(models.Trend)
class Trend:
    id: auto
    megatrend: auto
    macrotrend: auto
    challenges_and_research_gaps: auto
    total_count_of_publications: auto
    total_count_of_patents: auto
    technology_readiness_level: TechnologyReadinessLevel | None
    impact_strength: ImpactStrength
    steepl: Steepl
    relevant_industries: auto
    real_world_application_and_use_cases: auto
    uploaded_at: auto
    updated_at: auto


@strawberry.type
class Query:
    trends: list[Trend] = strawberry_django.field(filters=TrendFilter, pagination=True)
    trend: Trend = strawberry_django.field()


schema = strawberry.Schema(query=Query, extensions=[DjangoOptimizerExtension()])
""",
    "peer/urls.py": """\
from django.urls import path
from strawberry.django.views import AsyncGraphQLView

from peer.schema import schema

urlpatterns = [path("graphql", AsyncGraphQLView.as_view(schema=schema, graphql_ide=None))]
""",
    "peer/asgi.py": """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")
application = get_asgi_application()
""",
}


@dataclass(frozen=True)
class Peer:
    """A GraphQL server measured next to ours, and its documents for L1 to L4."""

    key: str  # its name in bench/results.json
    name: str
    how: str  # what runs, for the tables
    packages: tuple[str, ...]  # what is installed, pinned
    set_up: Callable[[], None]
    serve: Callable[[Path], contextlib.AbstractContextManager[str]]
    documents: Callable[[int], dict[str, str]]


def copy_rows() -> None:
    """The typed copy of our rows in schema `peers` of the benchmark's database, made anew."""
    schema = sql.Identifier(SCHEMA)
    columns = sql.SQL(", ").join(
        sql.SQL("{}::{}.{}").format(sql.Identifier(c.name), schema, sql.Identifier(c.name))
        if c.name in ENUMS
        else sql.Identifier(c.name)
        for c in TREND_TABLE.columns
    )
    with psycopg.connect(libpq_url(bench_url()), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        for name, members in ENUMS.items():
            labels = sql.SQL(", ").join(sql.Literal(m.value) for m in members)
            create = sql.SQL("CREATE TYPE {}.{} AS ENUM ({})")
            conn.execute(create.format(schema, sql.Identifier(name), labels))
        conn.execute(sql.SQL(COPY_TABLE).format(schema=schema))
        insert = sql.SQL("INSERT INTO {}.trend SELECT {} FROM public.trend")
        conn.execute(insert.format(schema, columns))
        for index in COPY_INDEXES:
            conn.execute(sql.SQL(index).format(schema=schema))
        conn.execute(sql.SQL("ANALYZE {}.trend").format(schema))


def graphql_answers(base: str) -> str | None:
    """None when the GraphQL server at `base` answers a query, else what it answered."""
    try:
        response = httpx.post(f"{base}/graphql", json={"query": "{ __typename }"}, timeout=2)
    except httpx.HTTPError as exc:
        return repr(exc)
    return None if response.status_code == 200 else f"{response.status_code} {response.text}"


# PostGraphile


def postgraphile_dir() -> Path:
    return PEERS_DIR / "postgraphile"


def set_up_postgraphile() -> None:
    """`npm install` of the pinned PostGraphile, unless that version is there already."""
    installed = postgraphile_dir() / "node_modules" / "postgraphile" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == POSTGRAPHILE_VERSION:
        return
    if shutil.which("npm") is None:
        raise BenchError("PEERS=1 needs Node.js and npm (for PostGraphile)")
    print(f"  installing PostGraphile {POSTGRAPHILE_VERSION}", flush=True)
    cmd = ["npm", "install", "--prefix", str(postgraphile_dir()), "--save-exact"]
    run([*cmd, "--no-audit", "--no-fund", f"postgraphile@{POSTGRAPHILE_VERSION}"], dict(os.environ))


@contextlib.contextmanager
def postgraphile(log: Path) -> Iterator[str]:
    """PostGraphile's CLI over schema `peers`: one process, no mutations, no GraphiQL, no log."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        str(postgraphile_dir() / "node_modules" / ".bin" / "postgraphile"),
        *("--connection", libpq_url(bench_url()), "--schema", SCHEMA),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--simple-collections", "both", "--disable-default-mutations"),
        *("--disable-graphiql", "--disable-query-log"),
    ]
    env = {**os.environ, "NODE_ENV": "production"}
    with started(cmd, log, env, PEERS_DIR, lambda: graphql_answers(base)):
        yield base


def postgraphile_documents(trend_id: int) -> dict[str, str]:
    """L1 to L4 as PostGraphile asks them; L4, without an aggregate, the rows it is made of."""
    ai = 'condition: {megatrend: "AI"}'
    order = "orderBy: PRIMARY_KEY_ASC"
    return {
        "L1": f"{{ allTrends(first: 500, {order}) {{ nodes {{ {FIELDS} }} }} }}",
        "L2": f"{{ allTrends(first: 500, {ai}, {order}) {{ nodes {{ {FIELDS} }} }} }}",
        "L3": f"{{ trendById(id: {trend_id}) {{ {FIELDS} }} }}",
        "L4": f"{{ allTrends({ai}) {{ nodes {{ macrotrend technologyReadinessLevel }} }} }}",
    }


# strawberry-django


def django_dir() -> Path:
    return PEERS_DIR / "strawberry-django"


def set_up_django() -> None:
    """A virtualenv with the pinned packages (unless installed already) and the project's files."""
    venv = django_dir() / ".venv"
    requirements = "\n".join(DJANGO_REQUIREMENTS) + "\n"
    installed = django_dir() / "installed.txt"  # written once the installation succeeded
    if not installed.exists() or installed.read_text() != requirements:
        print("  installing strawberry-django", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(venv)], dict(os.environ))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        run([*pip, "--disable-pip-version-check", *DJANGO_REQUIREMENTS], dict(os.environ))
        installed.write_text(requirements)
    for name, text in DJANGO_FILES.items():
        path = django_dir() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


@contextlib.contextmanager
def strawberry_django(log: Path) -> Iterator[str]:
    """The Django project under uvicorn, DJANGO_WORKERS processes, as ours runs."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = bench_url()
    cmd = [
        str(django_dir() / ".venv" / "bin" / "uvicorn"),
        "peer.asgi:application",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(DJANGO_WORKERS)),
        *("--log-level", "warning"),
    ]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "peer.settings",
        "PEER_SECRET_KEY": os.urandom(24).hex(),
        "PEER_DB_NAME": url.database or "",
        "PEER_DB_HOST": url.host or "",
        "PEER_DB_PORT": str(url.port or 5432),
        "PEER_DB_USER": url.username or "",
        "PEER_DB_PASSWORD": url.password or "",
    }
    with started(cmd, log, env, django_dir(), lambda: graphql_answers(base)):
        yield base


def django_documents(trend_id: int) -> dict[str, str]:
    """L1 to L4 as strawberry-django asks them; L4, without an aggregate, its rows."""
    page = "pagination: {limit: 500}"
    return {
        "L1": f"{{ trends({page}) {{ {FIELDS} }} }}",
        "L2": f'{{ trends(filters: {{megatrend: "AI"}}, {page}) {{ {FIELDS} }} }}',
        "L3": f"{{ trend(pk: {trend_id}) {{ {FIELDS} }} }}",
        "L4": '{ trends(filters: {megatrend: "AI"}) { macrotrend technologyReadinessLevel } }',
    }


PEERS = (
    Peer(
        key="postgraphile",
        name=f"PostGraphile {POSTGRAPHILE_VERSION}",
        how="1 Node process",
        packages=(f"postgraphile@{POSTGRAPHILE_VERSION}",),
        set_up=set_up_postgraphile,
        serve=postgraphile,
        documents=postgraphile_documents,
    ),
    Peer(
        key="strawberry-django",
        name=f"strawberry-django {STRAWBERRY_DJANGO_VERSION} + optimizer",
        how=f"{DJANGO_WORKERS} uvicorn workers",
        packages=DJANGO_REQUIREMENTS,
        set_up=set_up_django,
        serve=strawberry_django,
        documents=django_documents,
    ),
)


# Comparing answers


def rows_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The trend rows of an answer's data, whatever the system's shape (list, connection, one)."""
    (value,) = data.values()
    if value is None:
        return []
    if isinstance(value, dict):
        value = value.get("nodes", [value])
    return [normalised_row(row) for row in value]


def normalised_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with ids as integers and date-times as datetime objects."""
    row = dict(row)
    if "id" in row:
        pk = str(row["id"])
        row["id"] = int(pk) if pk.isdigit() else decode_id(pk)
    for name in DATETIME_FIELDS:
        if isinstance(row.get(name), str):
            row[name] = datetime.fromisoformat(row[name])
    return row


def readiness(rows: list[dict[str, Any]]) -> list[tuple[str, int, int, float | None]]:
    """macrotrendReadiness computed from a megatrend's rows, as ours computes it in SQL."""
    scores = {level.name: score for level, score in TRL_SCORES.items()}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["macrotrend"].lower(), []).append(row)
    result = []
    for group in groups.values():
        levels = [r["technologyReadinessLevel"] for r in group]
        rated = [scores[level] for level in levels if level]
        average = round(sum(rated) / len(rated), 9) if rated else None
        result.append((min(r["macrotrend"] for r in group), len(group), len(rated), average))
    return sorted(result)


def comparable(workload: str, data: dict[str, Any], ours: bool) -> Any:
    """What must be equal between systems: rows sorted by id, or L4's figures."""
    if workload != "L4":
        return sorted(rows_of(data), key=lambda row: row["id"])
    if not ours:
        return readiness(rows_of(data))
    return sorted(
        (r["macrotrend"], r["trendCount"], r["ratedCount"], _rounded(r["averageTrlScore"]))
        for r in data["macrotrendReadiness"]
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 9)


def difference(ours: Any, theirs: Any) -> str | None:
    """None when equal, else a short description of the first difference."""
    if ours == theirs:
        return None
    if len(ours) != len(theirs):
        return f"{len(theirs)} rows, ours {len(ours)}"
    for mine, other in zip(ours, theirs, strict=True):
        if mine != other:
            if isinstance(mine, dict) and isinstance(other, dict):
                keys = sorted(set(mine) | set(other))
                fields = [k for k in keys if mine.get(k, ...) != other.get(k, ...)]
                field = fields[0]
                return (
                    f"row {mine.get('id')}: {field} is {_shown(other.get(field, 'missing'))},"
                    f" ours {_shown(mine.get(field, 'missing'))}"
                )
            return f"{other!r}, ours {mine!r}"
    return "differs"


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


def answer_difference(base: str, workload: Workload, ours: Any) -> str | None:
    """How a peer's answer to `workload` differs from ours (None: it does not)."""
    try:
        data = fetch(base, workload)[0].json()["data"]
        return difference(ours, comparable(workload.name, data, ours=False))
    except BenchError as exc:
        return str(exc)


def checked_peers(found: Probe, work: Path) -> tuple[list[System], dict[str, Any]]:
    """The peers, set up, with their answers compared with ours: those that agree, to measure."""
    print(f"peers: set up under {PEERS_DIR.relative_to(ROOT)}/, rows copied", flush=True)
    copy_rows()
    ours = {name: comparable(name, data, ours=True) for name, data in found.answers.items()}
    labels = {w.name: w.label for w in workloads("")}
    labels["L4"] = 'the rows of macrotrendReadiness "AI" (macrotrend, TRL: no aggregate)'
    systems: list[System] = []
    data: dict[str, Any] = {}
    for peer in PEERS:
        peer.set_up()
        measured = [
            Workload(name, labels[name], "/graphql", query)
            for name, query in peer.documents(decode_id(found.trend_id)).items()
        ]
        with peer.serve(work / f"{peer.key}-check.log") as base:
            differences = {w.name: answer_difference(base, w, ours[w.name]) for w in measured}
        differing = {name: text for name, text in differences.items() if text}
        data[peer.key] = {
            "name": peer.name,
            "runs": peer.how,
            "packages": list(peer.packages),
            "documents": {w.name: w.query for w in measured},
            "same_answers": not differing,
            "differences": differing,
        }
        if differing:
            print(f"  {peer.name}: answers differ from ours, not measured:", flush=True)
            for name, text in differing.items():
                print(f"    {name}: {text}", flush=True)
            continue
        print(f"  {peer.name} ({peer.how}): same answers as ours on L1 to L4", flush=True)
        systems.append(System(peer.key, "none", peer.serve, measured))
    return systems, data


def comparison(http: list[HttpResult]) -> list[dict[str, Any]]:
    """Per workload L1 to L4: each system's rates by round, and our mean rate ÷ each peer's."""
    compared = []
    for name in ("L1", "L2", "L3", "L4"):
        rates: dict[str, list[float]] = {}
        for r in http:
            if r.workload == name:
                system = f"ours_cache_{r.cache}" if r.system == "ours" else r.system
                rates.setdefault(system, []).append(r.requests_per_s)
        ratios = {
            peer.key: {
                "uncached": round(mean(rates["ours_cache_off"]) / mean(rates[peer.key]), 2),
                "cached": round(mean(rates["ours_cache_on"]) / mean(rates[peer.key]), 2),
            }
            for peer in PEERS
            if rates.get(peer.key) and rates.get("ours_cache_off") and rates.get("ours_cache_on")
        }
        label = next(r.label for r in http if r.workload == name and r.system == "ours")
        compared.append(
            {"workload": name, "label": label, "requests_per_s": rates, "ours_per_peer": ratios}
        )
    return compared


def _span(rates: list[float] | None) -> str:
    if not rates:
        return ""
    low, high = min(rates), max(rates)
    return f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f}\N{EN DASH}{high:,.0f}"


def comparison_table(compared: list[dict[str, Any]]) -> str:
    """Our rate ÷ each peer's, uncached and cached, with everyone's requests/s (each round)."""
    measured = [p for p in PEERS if any(p.key in row["ours_per_peer"] for row in compared)]
    head = [f"{p.name} ({p.how})" for p in measured]
    head += ["ours, cached", "ours, `CACHE_TTL=0`"]
    for p in measured:
        short = p.name.split()[0]
        head += [f"ours ÷ {short}, uncached", f"ours ÷ {short}, cached"]
    lines = [
        "| workload (requests/s) | " + " | ".join(head) + " |",
        "|---|" + "--:|" * len(head),
    ]
    for row in compared:
        rates = row["requests_per_s"]
        cells = [f"{row['workload']} {row['label']}"]
        cells += [_span(rates.get(p.key)) for p in measured]
        cells += [_span(rates.get("ours_cache_on")), _span(rates.get("ours_cache_off"))]
        for p in measured:
            ratio = row["ours_per_peer"].get(p.key, {})
            cells += [f"{ratio['uncached']:.2f}", f"{ratio['cached']:.2f}"] if ratio else ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", NO_PAGE_LOADS]
    return "\n".join(lines)
