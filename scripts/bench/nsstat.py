#!/usr/bin/env python3
"""CPU and UDP counters for scripts/bench_throughput.sh (python3 standard library only).

  nsstat.py snap NS...            print a JSON snapshot: utime+stime clock ticks (all threads) of every
                                  process, tagged with its namespace if it is one of NS, else "foreign"
                                  (other tenants; this script's own ancestry is left out); the UDP
                                  counters and the interfaces' rx/tx drop counters of each namespace;
                                  whole-machine busy/total jiffies
  nsstat.py busy SECONDS          print the whole-machine busy % over the next SECONDS
  nsstat.py row ARGS              turn one iperf3 run into a TSV row (see row_main)
  nsstat.py fail OUT ROUND RTT CONFIG DIR NOTE   a row for a run that could not take place
"""
import json
import os
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def machine_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
    return busy, busy + v[3] + v[4]  # + idle iowait


def udp_counters(path):
    with open(path) as f:
        lines = [line.split() for line in f if line.startswith("Udp:")]
    names, values = lines[0][1:], [int(x) for x in lines[1][1:]]
    c = dict(zip(names, values))
    return {"in": c["InDatagrams"], "in_errors": c["InErrors"], "rcvbuf_errors": c["RcvbufErrors"],
            "sndbuf_errors": c["SndbufErrors"]}


def snap(namespaces):
    inode_to_ns = {}
    for ns in namespaces:
        try:
            inode_to_ns[os.stat(f"/run/netns/{ns}").st_ino] = ns
        except OSError:
            pass
    mine = set()
    pid = os.getpid()
    while pid > 1:
        mine.add(pid)
        try:
            pid = parent_of(pid)
        except OSError:
            break
    ticks = {}  # pid -> [namespace or None for foreign, clock ticks]
    some_pid = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read(1):
                    continue  # kernel thread
            ns = inode_to_ns.get(os.stat(f"/proc/{pid}/ns/net").st_ino)
            t = proc_ticks(pid)
        except OSError:
            continue
        if ns is not None:
            some_pid.setdefault(ns, pid)
        elif pid in mine:
            continue
        ticks[str(pid)] = [ns, t]
    udp = {}
    for ns in namespaces:
        try:
            if ns in some_pid:
                udp[ns] = udp_counters(f"/proc/{some_pid[ns]}/net/snmp")
        except OSError:
            pass
    busy, total = machine_jiffies()
    return {"mono": time.monotonic(), "ticks": ticks, "busy": busy, "total": total, "udp": udp,
            "if_drops": {ns: interface_drops(ns) for ns in namespaces}}


def interface_drops(ns):
    """{"ifname:rx" / "ifname:tx": dropped} of every interface in the namespace (e.g. a TUN device whose
    queue overflowed because its reader fell behind)."""
    try:
        out = subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show"], capture_output=True, timeout=5,
                             check=True).stdout
        links = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    drops = {}
    for link in links:
        stats = link.get("stats64", {})
        for way in ("rx", "tx"):
            drops[f"{link['ifname']}:{way}"] = stats.get(way, {}).get("dropped", 0)
    return drops


def cpu_deltas(s0, s1):
    """Clock ticks used between two snapshots per namespace (None = foreign). A pid present in both
    counts its difference, a new pid all its ticks (it started after the first snapshot); processes that
    lived only between the snapshots are not seen."""
    out = {}
    for pid, (ns, t) in s1["ticks"].items():
        prev = s0["ticks"].get(pid)
        d = t - prev[1] if prev and prev[0] == ns and prev[1] <= t else t
        out[ns] = out.get(ns, 0) + d
    return out


def busy_pct(seconds):
    b0, t0 = machine_jiffies()
    time.sleep(seconds)
    b1, t1 = machine_jiffies()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def delay_drops(before, after):
    """Frames the delay line lost between two counter lines (ring full, send errors, socket drops)."""
    if not before or not after:
        return ""
    a = {x["lane"]: x for x in json.loads(before)["delay_line"]}
    b = json.loads(after)["delay_line"]
    lost = 0
    for lane in b:
        prev = a.get(lane["lane"], {"ring_full_drops": 0, "tx_errors": 0})
        lost += lane["ring_full_drops"] - prev["ring_full_drops"] + lane["tx_errors"] - prev["tx_errors"]
        lost += lane["socket_drops_since_last"]  # reset by every read
    return str(lost)


COLUMNS = ["round", "rtt_ms", "config", "dir", "gbps", "retrans", "gw_cpu_pct", "cli_cpu_pct", "mid_cpu_pct",
           "srv_cpu_pct", "foreign_cpu_pct", "bg_busy_pct", "sys_busy_pct", "gw_udp_rcvbuf_err",
           "cli_udp_rcvbuf_err", "gw_if_drops", "cli_if_drops", "delay_drops", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "lag_samples",
           "healthz_p50_ms", "healthz_p99_ms", "healthz_max_ms", "healthz_n", "healthz_fail", "note"]


def row_main(argv):
    """row OUT_TSV ROUND RTT CONFIG DIR IPERF_JSON SNAP_BEFORE SNAP_AFTER BG_BUSY PROBE_JSON DL_BEFORE DL_AFTER
    NOTE"""
    (out, rnd, rtt, config, direction, iperf_path, before_path, after_path, bg, probe_path, dl0, dl1,
     extra_note) = argv
    note = []
    gbps, retrans = float("nan"), ""
    j = load_json(iperf_path)
    if j and not j.get("error") and "sum_received" in j.get("end", {}):
        gbps = j["end"]["sum_received"]["bits_per_second"] / 1e9
        retrans = j["end"].get("sum_sent", {}).get("retransmits", "")
    else:
        note.append("iperf3 failed: " + ((j or {}).get("error") or "no JSON output"))
    if extra_note:
        note.append(extra_note)
    s0, s1 = load_json(before_path), load_json(after_path)
    wall = max(1e-6, s1["mono"] - s0["mono"])

    def pct(ticks):
        return f"{100.0 * ticks / CLK_TCK / wall:.1f}"

    cpu = cpu_deltas(s0, s1)

    def ns_pct(ns):
        return pct(cpu.get(ns, 0))

    def udp_delta(ns, key):
        a, b = s0["udp"].get(ns), s1["udp"].get(ns)
        return str(b[key] - a[key]) if a and b else ""

    def if_drops(ns):
        a, b = s0.get("if_drops", {}).get(ns, {}), s1.get("if_drops", {}).get(ns, {})
        return ",".join(f"{k}={v - a.get(k, 0)}" for k, v in sorted(b.items()) if v - a.get(k, 0) > 0)

    sys_busy = 100.0 * (s1["busy"] - s0["busy"]) / max(1, s1["total"] - s0["total"])
    probe = load_json(probe_path) or {}
    lag = probe.get("loop_lag") or {}
    hz = probe.get("healthz") or {}
    if probe.get("loop_lag_error"):
        note.append("loop-lag: " + probe["loop_lag_error"])

    def num(v, fmt="{:.2f}"):
        return "" if v is None else fmt.format(v)

    row = [rnd, rtt, config, direction, f"{gbps:.3f}", str(retrans), ns_pct("fzbgw"), ns_pct("fzbcli"),
           ns_pct("fzbmid"), ns_pct("fzbsrv"), pct(cpu.get(None, 0)), bg, f"{sys_busy:.1f}",
           udp_delta("fzbgw", "rcvbuf_errors"), udp_delta("fzbcli", "rcvbuf_errors"), if_drops("fzbgw"),
           if_drops("fzbcli"), delay_drops(dl0, dl1),
           num(lag.get("p50_ms")), num(lag.get("p99_ms")), num(lag.get("max_ms")),
           num(lag.get("samples"), "{}"), num(hz.get("p50_ms")), num(hz.get("p99_ms")), num(hz.get("max_ms")),
           num(hz.get("n"), "{}"), num(hz.get("failed"), "{}"), "; ".join(note).replace("\t", " ")]
    append_row(out, row)
    r = dict(zip(COLUMNS, row))
    line = (f"round {r['round']} rtt {r['rtt_ms']}ms {r['config']:<6} {r['dir']}: {r['gbps']} Gbit/s "
            f"retr={r['retrans']} gw_cpu={r['gw_cpu_pct']}% cli_cpu={r['cli_cpu_pct']}% "
            f"mid_cpu={r['mid_cpu_pct']}% gw_rcvbuf_err={r['gw_udp_rcvbuf_err'] or '-'} "
            f"cli_rcvbuf_err={r['cli_udp_rcvbuf_err'] or '-'} bg_busy={r['bg_busy_pct']}% "
            f"foreign_cpu={r['foreign_cpu_pct']}%")
    for k in ("gw_if_drops", "cli_if_drops", "delay_drops"):
        if r[k] and r[k] != "0":
            line += f" {k}={r[k]}"
    if r["lag_p99_ms"]:
        line += f" loop_lag p99={r['lag_p99_ms']}ms max={r['lag_max_ms']}ms"
    if r["healthz_p99_ms"]:
        line += f" healthz p99={r['healthz_p99_ms']}ms max={r['healthz_max_ms']}ms fail={r['healthz_fail']}"
    if r["note"]:
        line += f" [{r['note']}]"
    print(line)


def append_row(out, row):
    new = not os.path.exists(out) or os.path.getsize(out) == 0
    with open(out, "a") as f:
        if new:
            f.write("\t".join(COLUMNS) + "\n")
        f.write("\t".join(row) + "\n")


def fail_main(argv):
    """fail OUT_TSV ROUND RTT CONFIG DIR NOTE: a row for a run that could not take place"""
    out, rnd, rtt, config, direction, note = argv
    row = {c: "" for c in COLUMNS}
    row.update(round=rnd, rtt_ms=rtt, config=config, dir=direction, gbps="nan", note=note)
    append_row(out, [row[c] for c in COLUMNS])
    print(f"round {rnd} rtt {rtt}ms {config:<6} {direction}: FAILED: {note}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "snap":
        json.dump(snap(sys.argv[2:]), sys.stdout)
        print()
    elif cmd == "busy":
        print(f"{busy_pct(float(sys.argv[2])):.1f}")
    elif cmd == "row":
        row_main(sys.argv[2:])
    elif cmd == "fail":
        fail_main(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
