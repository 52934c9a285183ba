"""The process-local Prometheus instruments: what requests, logins and the pool record.

Any layer records into them; web/metrics.py exports them with what it reads from the database
and Redis at scrape time. Under several server processes prometheus_client's multiprocess mode
keeps their values in files under PROMETHEUS_MULTIPROC_DIR, which must be set before this module
is first imported (`trends serve` does it).
"""

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# A `_created` series beside each counter doubles what is stored, for what restarts show anyway.
disable_created_metrics()

REQUESTS = Counter(
    "trends_graphql_requests",
    "GraphQL requests by operation name and outcome (ok, or the code of the first error).",
    ["operation", "outcome"],
)
LATENCY = Histogram(
    "trends_graphql_request_duration_seconds",
    "Time to answer a GraphQL request, by operation name and result (ok or error).",
    ["operation", "result"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CACHE = Counter(
    "trends_cache_responses",
    "GraphQL requests by response cache outcome (hit, miss, bypass: X-Trends-Cache).",
    ["outcome"],
)
PREPARED = Counter(
    "trends_prepared_reads",
    "GraphQL requests with a prepared read: `answered` by it, or the `usual` way after it failed.",
    ["outcome"],
)
LOGINS = Counter(
    "trends_logins",
    "Login attempts by outcome: ok, invalid_credentials, or a refusal by its reason.",
    ["outcome"],
)
POOL_CHECKED_OUT = Gauge(
    "trends_db_pool_checked_out",
    "Database connections in use by the web processes.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "trends_db_pool_size",
    "Database connections the web processes may open (DB_POOL_SIZE each).",
    multiprocess_mode="livesum",
)
PROCESSES = Gauge(
    "trends_web_processes",
    "Web server processes whose figures this scrape sums.",
    multiprocess_mode="livesum",
)
