"""A deterministic synthetic knowledge base of any size, for benchmarks.

Each postmortem is ~8 KB: ~2.8 KB of front matter (roles, times, a 12-entry
timeline, 4 action items), then 600-1,000 words of prose in the template's
sections, with a blame phrase in about one file in five. Same seed, same bytes.

    python benchmarks/generate.py OUT_DIR --count 1000
"""

from __future__ import annotations

import argparse
import random
from datetime import date, datetime, timedelta
from pathlib import Path

SERVICES = ["checkout", "payments", "auth", "search", "api-gateway", "notifications", "inventory", "cdn", "billing",
            "identity", "kafka", "postgres-primary", "mobile-api", "ledger", "email", "recommendations", "media",
            "graphql", "dns", "object-store"]
TAGS = ["database", "configuration", "deploy", "capacity", "network", "certificate", "dependency", "cache",
        "queue", "kubernetes", "dns", "feature-flag", "rate-limit", "storage", "security"]
FIRST = ["Priya", "Marcus", "Hannah", "Diego", "Sam", "Wei", "Fatima", "Tomasz", "Aiko", "Ben", "Chloe", "Dmitri",
         "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Paula"]
LAST = ["Raman", "Oyelaran", "Lindqvist", "Alvarez", "Okafor", "Zhang", "Haddad", "Nowak", "Tanaka", "Carter",
        "Dubois", "Volkov", "Rossi", "Nasser", "Hopper", "Sato", "Moreau", "Berg", "Mensah", "Fischer"]
SENTENCES = [
    "The {svc} service returned errors for a share of requests while the {comp} was saturated.",
    "Latency at the 99th percentile rose from 180 ms to {n} ms within four minutes.",
    "The deploy pipeline rolled the change to every region in one step because the canary stage was optional.",
    "Connection pools on the application hosts were sized for the old traffic pattern.",
    "The dashboard for {svc} did not show the queue depth, so the backlog was not visible at first.",
    "Retries from the mobile clients multiplied the load on the {comp} by a factor of {m}.",
    "The runbook described the failover for the previous topology and omitted the new replica set.",
    "An alert on the error budget burn rate paged the on-call {n2} minutes after the first errors.",
    "Responders rolled back the release and error rates returned to the baseline within ten minutes.",
    "The configuration change was valid YAML but referenced a pool that no longer existed.",
    "Capacity planning used the monthly average rather than the weekly peak.",
    "The health check only probed the TCP port, so instances that could not reach the database stayed in rotation.",
    "A certificate on the internal load balancer expired because it was issued by hand two years earlier.",
    "The cache stampede after the purge sent {n} requests per second to the origin.",
    "Kafka consumer lag grew while the partition reassignment throttled replication traffic.",
    "The feature flag defaulted to enabled for all tenants when the targeting rules failed to load.",
]
BLAME = ["The on-call should have rolled back sooner.", "This was ultimately human error.",
         "A careless edit removed the listener.", "The engineer forgot to drain the node before the upgrade."]
SECTIONS = ["Summary", "Impact", "Root Cause", "Contributing Factors", "Five Whys", "What Went Well",
            "What Went Poorly", "Lessons Learned"]
COMPONENTS = ["database primary", "connection pool", "cache cluster", "message broker", "load balancer", "DNS resolver"]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def postmortem(i: int, rng: random.Random, start: date, n_total: int) -> tuple[str, str]:
    day = start + timedelta(days=int(i * 1095 / max(n_total, 1)))
    pid = f"INC-{day.year}-{i + 1:05d}"
    sev = rng.choices(["SEV1", "SEV2", "SEV3", "SEV4"], weights=[1, 3, 4, 2])[0]
    services = rng.sample(SERVICES, rng.randint(1, 3))
    tags = rng.sample(TAGS, rng.randint(1, 3))
    t0 = datetime(day.year, day.month, day.day, rng.randint(0, 19), rng.randint(0, 59))
    offsets = sorted(rng.sample(range(1, 200), 4))
    times = [t0] + [t0 + timedelta(minutes=o) for o in offsets]
    names = ["started", "detected", "acknowledged", "mitigated", "resolved"]
    lines = [
        "---", f"id: {pid}", f"title: {rng.choice(services).capitalize()} errors after a {rng.choice(tags)} change "
        f"({rng.randint(10, 200)} minutes)", f"date: {day.isoformat()}", f"severity: {sev}",
        f"status: {rng.choice(['published', 'published', 'published', 'draft', 'in-review'])}",
        f"authors: [{person(rng)}, {person(rng)}]", f"services: [{', '.join(services)}]", f"tags: [{', '.join(tags)}]",
        f"detection: {rng.choice(['alert', 'customer', 'internal', 'healthcheck'])}", "roles:",
        f"  incident_commander: {person(rng)}", f"  tech_lead: {person(rng)}", f"  comms_lead: {person(rng)}",
        f"  scribe: {person(rng)}", "times:",
    ]
    lines += [f"  {n}: {t.strftime('%Y-%m-%dT%H:%M:00Z')}" for n, t in zip(names, times)]
    total = int((times[-1] - times[0]).total_seconds() // 60)
    lines += [f"duration: {total // 60}h {total % 60}m" if total >= 60 else f"duration: {total}m", "impact:",
              f"  users_affected: {rng.randint(10, 90000)}", f"  revenue: {rng.randint(0, 90000)}",
              "  data_loss: none", f"  description: About {rng.randint(1, 60)}% of requests to "
              f"{services[0]} failed during the incident window.", "timeline:"]
    span = (times[-1] - times[0]).total_seconds() / 60
    phases = ["detect", "triage", "triage", "mitigate", "mitigate", "resolve"]
    for k in range(12):
        t = times[0] + timedelta(minutes=int(span * k / 11))
        lines += [f"  - time: {t.strftime('%Y-%m-%dT%H:%M:00Z')}",
                  f"    event: {rng.choice(SENTENCES).format(svc=services[0], comp=rng.choice(COMPONENTS), n=rng.randint(300, 9000), n2=rng.randint(2, 30), m=rng.randint(2, 9))}",
                  f"    phase: {phases[min(k // 2, 5)]}"]
    lines.append("action_items:")
    for k in range(4):
        due = day + timedelta(days=rng.randint(14, 120))
        lines += [f"  - action: Add a check so {rng.choice(COMPONENTS)} limits are validated before deploys.",
                  f"    owner: {person(rng)}", f"    due: {due.isoformat()}",
                  f"    status: {rng.choice(['open', 'in-progress', 'done', 'done', 'wont-do'])}",
                  f"    kind: {'prevent' if k == 0 else rng.choice(['detect', 'mitigate', 'process'])}",
                  f"    ticket: https://tracker.example.com/browse/OPS-{rng.randint(1000, 99999)}"]
    if i > 0 and rng.random() < 0.2:
        lines.append(f"related: [INC-{(start + timedelta(days=int((i - 1) * 1095 / max(n_total, 1)))).year}-{i:05d}]")
    if rng.random() < 0.1:
        lines.append(f"problem: PRB-{rng.choice(tags)}")
    lines.append("---")
    words = rng.randint(600, 1000)
    body, count = [], 0
    blame_at = rng.randrange(len(SECTIONS)) if rng.random() < 0.2 else -1
    per = words // len(SECTIONS)
    for s_i, section in enumerate(SECTIONS):
        body += ["", f"## {section}", ""]
        para, n = [], 0
        while n < per:
            s = rng.choice(SENTENCES).format(svc=services[0], comp=rng.choice(COMPONENTS), n=rng.randint(300, 9000),
                                              n2=rng.randint(2, 30), m=rng.randint(2, 9))
            para.append(s)
            n += len(s.split())
        if s_i == blame_at:
            para.insert(1, rng.choice(BLAME))
        body.append(" ".join(para))
        count += n
    name = f"{pid}-{'-'.join(services[0].split())}.md"
    return f"{day.year}/{name}", "\n".join(lines + body) + "\n"


def generate(out: Path, count: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    docs = out / "docs"
    paths = []
    for i in range(count):
        rel, text = postmortem(i, rng, date(2022, 1, 3), count)
        p = docs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


def write_config(out: Path, *, enabled: bool = True, extra: str = "", name: str | None = None) -> Path:
    """extra: more of the plugin's options, each as `      key: value` lines."""
    cfg = out / (name or ("mkdocs.yml" if enabled else "mkdocs-off.yml"))
    cfg.write_text(
        "site_name: Benchmark\ndocs_dir: docs\ntheme:\n  name: material\n"
        "not_in_nav: |\n  /20*/**\n"
        "plugins:\n  - search\n  - pmkb:\n"
        f"      enabled: {'true' if enabled else 'false'}\n      as_of: 2025-06-30\n" + extra)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    generate(args.out, args.count, args.seed)
    write_config(args.out)
    write_config(args.out, enabled=False)
    print(f"{args.count} postmortems in {args.out / 'docs'}")


if __name__ == "__main__":
    main()
