"""Deterministic benchmark data: realistic agent memories from templates, random unit
vectors, and queries near known corpus vectors.

Everything is a pure function of ``(seed, index)``, so a child process that fills a
store and the process that later queries it agree without passing data around.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import numpy.typing as npt

DIM = 384
Vectors = npt.NDArray[np.float32]

_SERVICES = ["billing-api", "auth-service", "search-indexer", "checkout", "notifications",
             "payments-gateway", "user-profile", "inventory-sync", "feature-store",
             "log-shipper", "image-resizer", "email-relay"]
_PEOPLE = ["Alice", "Bob", "Priya", "Chen", "Fatima", "Lars", "Mateo", "Yuki", "Omar",
           "Grace", "Ngozi", "Ivan", "Sofia", "Kenji"]
_TEAMS = ["platform", "data", "mobile", "security", "growth", "infra", "support", "research"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the 3rd", "the 17th",
         "next sprint", "end of quarter"]
_REASONS = ["a migration locked the orders table", "the health check timed out",
            "memory usage doubled", "a config flag was flipped by mistake",
            "the new TLS certificate was not trusted", "p99 latency tripled",
            "an upstream dependency returned 502s", "the cache hit rate collapsed"]
_TOOLS = ["pytest", "Grafana", "Terraform", "kubectl", "vim", "VS Code", "Jupyter", "dbt",
          "Airflow", "Postgres", "Redis", "DuckDB"]
_TASKS = ["debugging flaky tests", "capacity planning", "writing runbooks",
          "reviewing pull requests", "ad-hoc analysis", "incident retrospectives"]
_ACTIONS = ["freeze deploys", "split the monolith's billing module", "drop Python 3.9",
            "move alerts to the new pager", "add canary releases", "archive old dashboards"]
_CUSTOMERS = ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics",
              "Wayne Retail", "Hooli", "Vandelay Imports"]
_FEATURES = ["CSV export", "single sign-on", "the mobile dashboard", "webhook retries",
             "bulk invoice download", "two-factor login", "the search filters"]
_PROBLEMS = ["stopped working", "became very slow", "shows the wrong totals",
             "times out for large accounts", "logs users out randomly"]
_ENVS = ["staging", "production", "eu-west", "us-east", "dev"]
_ENDPOINTS = ["/v1/orders", "/v2/search", "/auth/token", "/health", "/v1/invoices/export"]
_LANGS = ["French", "Spanish", "German", "Japanese", "Portuguese", "English"]
_STORES = ["Consul", "a YAML file", "the settings table", "etcd", "environment variables"]
_ERRORS = ["connection reset by peer", "no space left on device", "permission denied",
           "lock wait timeout exceeded", "certificate has expired"]
_MEALS = ["lunch", "coffee", "breakfast", "a 30-minute call"]

_TEMPLATES = [
    "The {service} deploy on {day} was rolled back because {reason}.",
    "{person} prefers {tool} over {tool2} for {task}.",
    "In the {team} sync we agreed to {action} before {day}.",
    "Customer {customer} reported that {feature} {problem} after upgrading to version {ver}.",
    "The {env} database for {service} rotates its credentials every {n} days.",
    "To reproduce the {service} timeout, send {n} concurrent requests to {endpoint}.",
    "{person} is on call for {team} this week; escalate {service} alerts to them.",
    "The user asked for answers in {lang} and prefers short bullet points.",
    "Latency of {endpoint} went from {n} ms to {m} ms after the {service} change.",
    "Remember that {service} reads its feature flags from {store} at startup only.",
    "The quarterly report for {customer} is due on {day} and needs figures from {team}.",
    "When {tool} fails with '{error}', clearing its cache usually fixes it.",
    "{person} mentioned that {customer} might churn if {feature} is not fixed soon.",
    "Our {env} cluster runs {n} nodes with {m} GB of memory each.",
    "Book {meal} with {person} to discuss the {team} roadmap.",
    "{person} owns the {service} runbook; it was last reviewed on {day}.",
]
_PII = [" Contact {first}.{last}@example.com for access.", " The box is at 10.{a}.{b}.{c}.",
        " Call +1 415 555 {a:04d} if it pages again."]


def record(seed: int, index: int) -> tuple[str, dict[str, Any]]:
    """One memory: 1-3 sentences (about 1 in 20 with an email, IP or phone number, which
    the node redacts) and a small flat metadata map."""
    rng = random.Random(seed * 1_000_003 + index)

    def fill(template: str) -> str:
        return template.format(
            service=rng.choice(_SERVICES), person=rng.choice(_PEOPLE),
            team=rng.choice(_TEAMS), day=rng.choice(_DAYS), reason=rng.choice(_REASONS),
            tool=rng.choice(_TOOLS), tool2=rng.choice(_TOOLS), task=rng.choice(_TASKS),
            action=rng.choice(_ACTIONS), customer=rng.choice(_CUSTOMERS),
            feature=rng.choice(_FEATURES), problem=rng.choice(_PROBLEMS),
            env=rng.choice(_ENVS), endpoint=rng.choice(_ENDPOINTS), lang=rng.choice(_LANGS),
            store=rng.choice(_STORES), error=rng.choice(_ERRORS), meal=rng.choice(_MEALS),
            n=rng.randint(2, 500), m=rng.randint(2, 900), ver=f"{rng.randint(1, 9)}."
            f"{rng.randint(0, 30)}",
        )

    sentences = [fill(rng.choice(_TEMPLATES)) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
    text = " ".join(sentences)
    if rng.random() < 0.05:
        text += rng.choice(_PII).format(first=rng.choice(_PEOPLE).lower(), last="ops",
                                        a=rng.randint(0, 255), b=rng.randint(0, 255),
                                        c=rng.randint(1, 254))
    meta: dict[str, Any] = {"team": rng.choice(_TEAMS), "kind": rng.choice(
        ("note", "preference", "incident", "task")), "n": index}
    return text, meta


def records(seed: int, start: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    return [record(seed, i) for i in range(start, start + count)]


def unit_vectors(seed: int, stream: int, batch: int, size: int, dim: int = DIM) -> Vectors:
    """``size`` random unit vectors, a pure function of (seed, stream, batch)."""
    rng = np.random.default_rng([seed, stream, batch])
    v = rng.standard_normal((size, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v, dtype=np.float32)


def near(vectors: Vectors, rng: np.random.Generator, noise: float = 0.5) -> Vectors:
    """Unit vectors near each row of ``vectors`` (cosine ~0.9 for noise 0.5): queries
    that have a known nearest neighbour."""
    g = rng.standard_normal(vectors.shape, dtype=np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = vectors + np.float32(noise) * g
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q, dtype=np.float32)
