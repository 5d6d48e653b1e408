#!/usr/bin/env python3
"""Main-thread responsiveness of fz-gateway while the tunnel runs at full rate (stdlib only).

  health_probe.py HOST:PORT SECONDS [INTERVAL_MS]

1. GET /metrics/loop-lag once, which resets the gateway's 10 ms-timer lateness statistics.
2. For SECONDS: GET /healthz every INTERVAL_MS (default 20) on a new TCP connection each time, as a
   liveness probe would, and record how long the full response took (connect + request + body).
3. GET /metrics/loop-lag again: the lateness of the 10 ms timer in the gateway's main thread during
   the run ({"p50_ms","p99_ms","max_ms","samples"}).
Prints one JSON object: {"healthz": {n, failed, p50_ms, p99_ms, max_ms, statuses}, "loop_lag": {...} or
null, "loop_lag_error": text or null}.
"""
import http.client
import json
import sys
import time


def get(host, port, path, timeout):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def read_loop_lag(host, port):
    try:
        status, body = get(host, port, "/metrics/loop-lag", 2.0)
    except OSError as e:
        return None, f"GET /metrics/loop-lag failed: {e}"
    if status != 200:
        return None, f"GET /metrics/loop-lag answered HTTP {status} (endpoint missing?)"
    try:
        return json.loads(body), None
    except ValueError:
        return None, "GET /metrics/loop-lag did not return JSON"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    port = int(port)
    seconds = float(sys.argv[2])
    interval = (float(sys.argv[3]) if len(sys.argv) > 3 else 20.0) / 1000.0
    _, lag_error = read_loop_lag(host, port)
    latencies, failed, statuses = [], 0, {}
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            status, _ = get(host, port, "/healthz", 2.0)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status == 200:
                latencies.append((time.monotonic() - t0) * 1000.0)
            else:
                failed += 1
        except OSError:
            failed += 1
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()
    lag, lag_error2 = read_loop_lag(host, port)
    latencies.sort()
    print(json.dumps({
        "healthz": {"n": len(latencies), "failed": failed, "p50_ms": percentile(latencies, 0.5),
                    "p99_ms": percentile(latencies, 0.99), "max_ms": latencies[-1] if latencies else None,
                    "statuses": statuses},
        "loop_lag": lag,
        "loop_lag_error": lag_error2 or lag_error,
    }))


if __name__ == "__main__":
    main()
