"""Service settings: command-line options, else ``TAILORED_*`` environment variables, else defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from tailored.config import convert
from tailored.store import DEFAULT_URL


@dataclass(frozen=True)
class ServiceSettings:
    """``model_dir`` serves one model directory; ``model`` (``NAME@STAGE``) serves what the ``registry`` points at
    and follows it (checked every ``reload_seconds``)."""

    model_dir: Path | None = None
    db_url: str = DEFAULT_URL
    registry: Path | None = None
    model: str | None = None
    reload_seconds: float = 2.0
    cors_origins: tuple[str, ...] = ()
    max_events_per_request: int = 10_000
    max_body_bytes: int = 5_000_000
    max_k: int = 1_000
    rate_limit_per_minute: int = 60_000
    max_in_flight: int = 64
    max_queue_ms: float = 50.0
    public_metrics: bool = False
    ann_ef_search: int = 64
    cache_size: int = 100_000
    commit_timeout_seconds: float = 30.0
    body_timeout_seconds: float = 10.0
    max_header_bytes: int = 16_384
    max_invalid_keys: int = 10_000
    key_cache_seconds: float = 30.0
    key_outage_seconds: float = 600.0
    database_check_seconds: float = 2.0
    erasure_poll_seconds: float = 1.0
    events_poll_seconds: float = 1.0
    experiment_poll_seconds: float = 5.0
    policy: str = "greedy"
    new_item_slots: int | None = None
    policy_seed: int = 0
    attribution_window_hours: float = 24.0
    pseudonym_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, model_dir: str | Path | None, **overrides: object) -> ServiceSettings:
        """Settings from ``TAILORED_<NAME>`` variables (``overrides`` that are not None win):

        - ``TAILORED_DB_URL``, ``TAILORED_CORS_ORIGINS`` (comma-separated), ``TAILORED_PSEUDONYM_KEY``;
        - ``TAILORED_ERASURE_POLL_SECONDS``: how often erasures made by other processes are read from the store;
        - ``TAILORED_EVENTS_POLL_SECONDS``: how often the users with events stored by other processes are read;
        - ``TAILORED_EXPERIMENT_POLL_SECONDS``: how often the running experiment and the exclusions are read;
        - limits: ``TAILORED_MAX_EVENTS_PER_REQUEST``, ``TAILORED_MAX_BODY_BYTES``, ``TAILORED_MAX_K``,
          ``TAILORED_RATE_LIMIT_PER_MINUTE``;
        - shedding: ``TAILORED_MAX_IN_FLIGHT`` requests with a valid key in progress (requests without one are
          refused before they take room) or an event loop ``TAILORED_MAX_QUEUE_MS`` late, and new requests get 503
          with ``Retry-After``; a body not received within ``TAILORED_BODY_TIMEOUT_SECONDS`` gets 408, headers over
          ``TAILORED_MAX_HEADER_BYTES`` get 431; ``TAILORED_MAX_INVALID_KEYS`` invalid keys are remembered (LRU);
        - keys are checked against the database every ``TAILORED_KEY_CACHE_SECONDS`` (a revoked key stops working
          within that time); while the database fails, a key found valid in the last ``TAILORED_KEY_OUTAGE_SECONDS``
          keeps working; a key check or ``/readyz`` waits at most ``TAILORED_DATABASE_CHECK_SECONDS`` for it;
        - ``TAILORED_COMMIT_TIMEOUT_SECONDS``: how long a POST of events waits for its commit (then 503, "not
          confirmed"), and how long a commit may run before ingestion counts as stalled (not ready);
        - ``TAILORED_CACHE_SIZE`` (hot lists), ``TAILORED_ANN_EF_SEARCH`` (HNSW search breadth on catalogues of
          ``ANN_MIN_ITEMS`` items and more: recall against speed);
        - ``TAILORED_POLICY`` (the slate policy's spec, e.g. ``thompson`` or ``softmax:temperature=0.5``; default
          ``greedy``: the model's own order, propensity 1), ``TAILORED_NEW_ITEM_SLOTS`` (overrides the policy's
          new-item slots), ``TAILORED_POLICY_SEED`` (each request draws from ``request_rng(seed, exposure_id)``),
          ``TAILORED_ATTRIBUTION_WINDOW_HOURS`` (how long after a list a click, cart or purchase is credited to it);
        - ``TAILORED_PUBLIC_METRICS`` (``/metrics`` without a key, for a scraper on a private network; otherwise it
          needs an ``admin`` key)."""
        values: dict[str, object] = {}
        for setting in fields(cls):
            raw = os.environ.get(f"TAILORED_{setting.name.upper()}")
            if setting.name in ("model_dir", "registry", "model") or raw is None:
                continue
            if setting.name == "cors_origins":
                values[setting.name] = tuple(origin.strip() for origin in raw.split(",") if origin.strip())
            else:
                kind = {"int": int, "float": float, "bool": bool, "str": str, "str | None": str,
                        "int | None": int}[str(setting.type)]
                values[setting.name] = convert(raw, kind, f"TAILORED_{setting.name.upper()}")
        values |= {key: value for key, value in overrides.items() if value is not None}
        return cls(None if model_dir is None else Path(model_dir), **values)  # type: ignore[arg-type]
