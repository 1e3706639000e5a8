#!/usr/bin/env python3
"""Turns the files bench/run.sh wrote into one Markdown summary of the headline numbers."""

import json
import pathlib
import sys


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"


def action_row(name, p):
    return f"| {name} | {p['count']:,} | {p['p50_ms']:.2f} | {p['p95_ms']:.2f} | {p['p99_ms']:.2f} | {p['max_ms']:.2f} |"


def peers_table(out):
    """Voltgate next to the other OCPP servers, from the `peers` scenario's files."""
    rows = []
    for name in ("voltgate", "python-ocpp", "node-ocpp-rpc"):
        loop = load(out / f"peers-{name}-closed-loop.json")
        idle = load(out / f"peers-{name}-idle.rss.json")
        if not loop and not idle:
            continue
        rate = cpu = None
        errors = {}
        if loop:
            rate = loop["throughput"]["messages_per_s"]
            if loop["throughput"]["all_online_after_s"] is None:
                errors["no steady window: rate over the whole run"] = 1
            cpu = (loop.get("gateway") or {}).get("cpu_us_per_message")
            errors.update(loop["summary"]["errors"])
        per_conn = None
        if idle:
            per_conn = (idle["rss_kib_settled"] - idle["rss_kib_before"]) / max(idle["chargers"], 1)
            idle_report = load(out / f"peers-{name}-idle.json")
            if idle_report:
                errors.update({f"idle {k}": v for k, v in idle_report["summary"]["errors"].items()})
        rows.append(f"| {name} | {fmt(rate, 0)} | {fmt(cpu, 2)} | {fmt(per_conn, 2)} | {errors or 'none'} |")
    if not rows:
        return []
    lines = ["## Side by side (closed loop, 1.6; idle connections)", "",
             "| server | messages/s | CPU µs/message | KiB/connection | errors |", "|---|---|---|---|---|"]
    lines += rows + [""]
    versions = out / "peers-versions.txt"
    if versions.exists():
        lines += ["```", versions.read_text().strip(), "```", ""]
    return lines


def cpu_split(path, online_after_s):
    """Cores used by each part (nodes, PostgreSQL, NATS, simulators) while the chargers came
    online and after, from the samples bench/cpu_sampler.py wrote."""
    try:
        samples = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []
    if len(samples) < 2:
        return []
    first, last = samples[0], samples[-1]
    windows = []
    if online_after_s is not None:
        cut = min(samples, key=lambda s: abs(s["t"] - (first["t"] + online_after_s)))
        if first["t"] < cut["t"] < last["t"]:
            windows = [("while coming online", first, cut), ("after", cut, last)]
    windows = windows or [("whole run", first, last)]
    lines = []
    for label, a, b in windows:
        span = b["t"] - a["t"]
        parts = [(name, (b["cpu_s"].get(name, 0) - a["cpu_s"].get(name, 0)) / span) for name in b["cpu_s"]]
        total = sum(cores for _, cores in parts)
        lines.append(f"- cores {label} ({span:.0f} s): " + ", ".join(f"{n} {c:.2f}" for n, c in parts)
                     + f"; all {total:.2f}")
    return lines


def cluster_table(out):
    """The `cluster` scenario: the single-node yardstick, the cluster and its failover."""
    lines = []
    for phase in ("cluster-single", "cluster", "cluster-failover"):
        reports = [r for r in (load(f) for f in sorted(out.glob(f"{phase}-sim-*.json"))) if r]
        if not reports:
            continue
        chargers = sum(r["chargers"] for r in reports)
        online = [r["throughput"]["all_online_after_s"] for r in reports]
        messages = commands = cpu = 0.0
        cpu_known = True
        sent = ok = 0
        errors, latencies = {}, []
        for r in reports:
            t, s, g = r["throughput"], r["summary"], r.get("gateway") or {}
            messages += t["messages_per_s"] * t["window_s"]
            commands += t["commands_per_s"] * t["window_s"]
            if g.get("cpu_seconds") is None:
                cpu_known = False
            else:
                cpu += g["cpu_seconds"]
            sent += s["commands_sent"]
            ok += s["commands_ok"]
            for kind, n in s["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
            if s.get("command_latency"):
                latencies.append(s["command_latency"])
        window = max(r["throughput"]["window_s"] for r in reports)
        lines += [f"## {phase}", ""]
        lines.append(f"- {chargers:,} chargers from {len(reports)} simulator(s); "
                     + (f"all online after {max(online):.1f} s" if None not in online else f"not all online: {online}"))
        lines.append(f"- steady window {window:.1f} s: {messages / window:,.0f} charger messages/s, "
                     f"{commands / window:,.0f} operator commands/s")
        lines.append(f"- operator commands: sent {sent:,}, answered 200 {ok:,}")
        if latencies:
            lines.append("- command latency per simulator (p50 / p99 / max ms): "
                         + "; ".join(f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f} / {c['max_ms']:.2f}" for c in latencies))
        if cpu_known and messages + commands > 0:
            lines.append(f"- gateway CPU, all nodes together, per message (charger CALL or operator command) in the "
                         f"steady window: {cpu * 1e6 / (messages + commands):.1f} µs ({cpu / window:.2f} cores)")
        lines.append(f"- errors: {errors or 'none'}")
        lines += cpu_split(out / f"{phase}.cpu.jsonl", max(online) if None not in online else None)
        lines.append("")
    for file, title, changes, seen in (
        ("cluster.propagation.json", "change propagation", "sites created", "asked for"),
        ("cluster.propagation-roles.json", "rule change propagation", "custom roles defined", "listed"),
    ):
        probe = load(out / file)
        if probe:
            lines += [f"## cluster: {title}", "",
                      f"- {probe.get('changes', 0)} {changes} through node 1, each {seen} through node 2: "
                      f"p50 {fmt(probe.get('p50_ms'), 2)} ms, p99 {fmt(probe.get('p99_ms'), 2)} ms, "
                      f"max {fmt(probe.get('max_ms'), 2)} ms (two curl processes included)", ""]
    failover = load(out / "cluster.failover.json")
    if failover:
        back = failover.get("online_again_after_s")
        lines += ["## cluster: a node SIGKILLed", "",
                  f"- {failover['killed']} held {failover['held']:,} of {failover['online_before']:,} online chargers; "
                  + (f"all online again on the others after {back:.2f} s" if back is not None
                     else f"not all back within 60 s ({failover.get('online_after')} online)"), ""]
    return lines


def main(out):
    out = pathlib.Path(out)
    lines = [f"# Benchmark run {out.name}", ""]
    machine = out / "machine.txt"
    if machine.exists():
        lines += ["```", machine.read_text().strip(), "```", ""]

    # one report from the simulator (however many processes it used); older result folders
    # hold two, from two simulators started by hand
    reports = [r for r in (load(out / "connections.json"),) if r]
    if not reports:
        reports = [r for r in (load(out / "connections-a.json"), load(out / "connections-b.json")) if r]
    gw = load(out / "connections.gateway.json")
    if reports:
        total = sum(r["chargers"] for r in reports)
        online = [r["throughput"]["all_online_after_s"] for r in reports]
        errors = {}
        for r in reports:
            for kind, n in r["summary"]["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        lines += ["## Connections and boot storm", ""]
        if None not in online:
            lines.append(f"- {total:,} chargers online and booted after {max(online):.1f} s: "
                         f"{total / max(online):,.0f} per second")
        else:
            lines.append(f"- not every charger came online: {online}")
        for r in reports:
            s = r["summary"]
            boot = s.get("boot_latency") or {}
            lines.append(f"- {r['chargers']:,} chargers from {r.get('processes', 1)} simulator process(es): "
                         f"made {s['connections_made']:,}, failed {s['connections_failed']:,}, "
                         f"boot p50 {fmt(boot.get('p50_ms'), 2)} ms p99 {fmt(boot.get('p99_ms'), 2)} ms max {fmt(boot.get('max_ms'), 2)} ms")
        lines.append(f"- errors: {errors or 'none'}")
        if gw:
            per = (gw["rss_kib_connected"] - gw["rss_kib_before"]) / max(gw["connected"], 1)
            lines.append(f"- gateway RSS {gw['rss_kib_before']:,} KiB idle -> {gw['rss_kib_connected']:,} KiB with "
                         f"{gw['connected']:,} connected: {per:.2f} KiB per connection (peak {gw['hwm_kib']:,} KiB)")
            lines.append(f"- extrapolated: 100,000 chargers need {per * 100_000 / 1048576 + gw['rss_kib_before'] / 1048576:.2f} GiB")
        lines.append("")

    for name in ("closed-loop-1.6", "closed-loop-2.0.1", "commands", "smoke"):
        r = load(out / f"{name}.json")
        if not r:
            continue
        t, s, g = r["throughput"], r["summary"], r.get("gateway") or {}
        lines += [f"## {name}", ""]
        lines.append(f"- {r['chargers']:,} chargers ({r['versions']}) from {r.get('processes', 1)} simulator process(es), "
                     f"steady window {t['window_s']:.1f} s")
        lines.append(f"- messages answered per second: {fmt(t['messages_per_s'], 0)} (whole run {fmt(t['messages_per_s_overall'], 0)})")
        lines.append(f"- gateway CPU per message: {fmt(g.get('cpu_us_per_message'), 2)} µs ({fmt(g.get('cpu_cores'), 2)} cores); "
                     f"RSS {g.get('rss_kib_steady')} KiB")
        lines.append(f"- simulator CPU per message: {fmt(t.get('sim_cpu_us_per_message'), 2)} µs "
                     f"-> one simulator core drives {fmt(1e6 / t['sim_cpu_us_per_message'] if t.get('sim_cpu_us_per_message') else None, 0)} messages/s")
        if s["commands_sent"]:
            c = s.get("command_latency") or {}
            lines.append(f"- operator commands: sent {s['commands_sent']:,}, ok {s['commands_ok']:,}, "
                         f"{t['commands_per_s']:,.0f}/s, p50 {fmt(c.get('p50_ms'), 2)} ms, p99 {fmt(c.get('p99_ms'), 2)} ms, max {fmt(c.get('max_ms'), 2)} ms")
        lines.append(f"- errors: {s['errors'] or 'none'}")
        lines += ["", "| action | count | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
        for action, p in s["per_action"].items():
            lines.append(action_row(action, p))
        for command, p in s["per_command"].items():
            lines.append(action_row(f"command {command}", p))
        lines.append("")
    lines += cluster_table(out)
    lines += peers_table(out)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
