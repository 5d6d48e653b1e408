#!/usr/bin/env python3
"""Summary of the runs.tsv written by scripts/bench_throughput.sh (python3 standard library only).

  summary.py RUNS_TSV...

Per (RTT, direction, configuration): min / median / max of Gbit/s and of the gateway namespace's CPU,
median retransmits, UDP receive-buffer drops, machine load, and the gateway main thread's 10 ms-timer
lateness and /healthz latency (p99 medians). Then back-to-back ratios: each run divided by the
wireguard-go run (b) and by the no-tunnel run (d) of the same round, RTT and direction.
"""
import csv
import statistics
import sys

CONFIG_NAMES = {
    "fz": "(a) fz-gateway <-> fz-gateway",
    "wg": "(b) wireguard-go <-> wireguard-go",
    "mixed": "(c) wireguard-go client -> fz-gateway",
    "direct": "(d) no tunnel",
}
ORDER = ["fz", "wg", "mixed", "direct"]


def floats(rows, key):
    out = []
    for r in rows:
        try:
            v = float(r.get(key) or "nan")
        except ValueError:
            continue
        if v == v:
            out.append(v)
    return sorted(out)


def mmm(values, fmt):
    if not values:
        return "n/a"
    return " / ".join(fmt.format(v) for v in (values[0], statistics.median(values), values[-1]))


def med(values, fmt):
    return fmt.format(statistics.median(values)) if values else "n/a"


def config_sort_key(name):
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = []
    for i, path in enumerate(sys.argv[1:]):
        with open(path) as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if len(sys.argv) > 2:  # rounds of different files are different rounds
                    r["round"] = f"{i + 1}.{r['round']}"
                rows.append(r)
    def valid(r):
        try:
            g = float(r["gbps"])
        except ValueError:
            return False
        return g == g and not r.get("note", "").startswith(("iperf3 failed", "tunnel not ready"))

    failed = [r for r in rows if not valid(r)]
    rows_all, rows = rows, [r for r in rows if valid(r)]
    if not rows_all:
        sys.exit("no runs")
    groups = {}
    for r in rows:
        groups.setdefault((float(r["rtt_ms"]), r["dir"], r["config"]), []).append(r)
    keys = sorted(groups, key=lambda k: (k[0], k[1], config_sort_key(k[2])))

    header = ["RTT", "dir", "config", "n", "Gbit/s min/med/max", "gw CPU % min/med/max", "client tunnel CPU % med",
              "retrans med", "gw/cli UDP rcvbuf drops med", "loop-lag p99 ms med (max)",
              "/healthz p99 ms med (max)", "bg busy % med", "foreign CPU % med"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key in keys:
        rs = groups[key]
        rtt, direction, config = key
        lag_max = floats(rs, "lag_max_ms")
        hz_max = floats(rs, "healthz_max_ms")
        lag = med(floats(rs, "lag_p99_ms"), "{:.1f}")
        if lag_max:
            lag += f" ({lag_max[-1]:.1f})"
        hz = med(floats(rs, "healthz_p99_ms"), "{:.1f}")
        if hz_max:
            hz += f" ({hz_max[-1]:.1f})"
        gw_drop = med(floats(rs, "gw_udp_rcvbuf_err"), "{:.0f}")
        cli_drop = med(floats(rs, "cli_udp_rcvbuf_err"), "{:.0f}")
        print("| " + " | ".join([
            f"{rtt:g} ms", direction, CONFIG_NAMES.get(config, config), str(len(rs)),
            mmm(floats(rs, "gbps"), "{:.3f}"), mmm(floats(rs, "gw_cpu_pct"), "{:.0f}"),
            med(floats(rs, "cli_cpu_pct"), "{:.0f}"), med(floats(rs, "retrans"), "{:.0f}"),
            f"{gw_drop} / {cli_drop}", lag, hz, med(floats(rs, "bg_busy_pct"), "{:.0f}"),
            med(floats(rs, "foreign_cpu_pct"), "{:.0f}"),
        ]) + " |")

    drops = []
    for key in keys:
        totals = {}
        for r in groups[key]:
            for side in ("gw", "cli"):
                for item in filter(None, (r.get(f"{side}_if_drops") or "").split(",")):
                    name, n = item.rsplit("=", 1)
                    totals.setdefault(f"{side} {name}", []).append(int(n))
        n = len(groups[key])
        medians = {k: statistics.median(v + [0] * (n - len(v))) for k, v in totals.items()}
        parts = ", ".join(f"{k} {m:.0f} (max {max(totals[k])})" for k, m in sorted(medians.items()) if m > 0)
        if parts:
            rtt, direction, config = key
            drops.append(f"- {rtt:g} ms {direction} {config}: {parts}")
    if drops:
        print("\nInterface drop counters, median per run (e.g. a TUN queue its reader did not keep up with):\n")
        print("\n".join(drops))

    by_round = {}
    for r in rows:
        try:
            g = float(r["gbps"])
        except ValueError:
            continue
        if g == g:
            by_round[(r["round"], float(r["rtt_ms"]), r["dir"], r["config"])] = g
    lines = []
    for base in ("wg", "direct"):
        for key in keys:
            rtt, direction, config = key
            if config == base or config == "direct":
                continue
            ratios = sorted(
                g / by_round[(rnd, rtt, direction, base)]
                for (rnd, t, d, c), g in by_round.items()
                if t == rtt and d == direction and c == config and by_round.get((rnd, rtt, direction, base), 0) > 0
            )
            if ratios:
                lines.append(f"| {rtt:g} ms | {direction} | {config} / {base} | {len(ratios)} | "
                             f"{mmm(ratios, '{:.3f}')} |")
    if lines:
        print("\nBack-to-back ratios (same round, RTT and direction):\n")
        print("| RTT | dir | ratio | n | min / median / max |")
        print("|---|---|---|---|---|")
        print("\n".join(lines))
    notes = [f"- round {r['round']}, {r['rtt_ms']} ms, {r['config']} {r['dir']}: "
             f"{'FAILED (left out above): ' if r in failed else ''}{r['note']}" for r in rows_all if r.get("note")]
    if notes:
        print("\nRuns with notes:\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
