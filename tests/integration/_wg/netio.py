#!/usr/bin/env python3
"""Traffic end points for tests/integration/wireguard_go_test.ts (python3 standard library only).

  netio.py tcp-recv HOST PORT           accept one connection, read to EOF, print
                                        {"bytes": N, "sha256": HEX}
  netio.py tcp-send HOST PORT BYTES     connect, send BYTES random bytes, close, print the same
  netio.py udp-echo HOST PORT SECONDS   echo every datagram back to its sender until SECONDS pass
  netio.py udp-check HOST PORT COUNT    send COUNT datagrams of varying size (8 .. 1200 bytes), each up
                                        to 3 times until its echo comes back, print
                                        {"sent": COUNT, "echoed": N, "mismatched": M, "retries": R}

The receiver prints "listening" on stderr once its socket is bound, so the caller can start the sender.
"""
import hashlib
import json
import os
import socket
import sys
import time


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp_recv(host, port):
    srv = socket.socket(family_of(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(60)
    print("listening", file=sys.stderr, flush=True)
    conn, _ = srv.accept()
    conn.settimeout(60)
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    conn.close()
    srv.close()
    print(json.dumps({"bytes": n, "sha256": h.hexdigest()}))


def tcp_send(host, port, total):
    s = socket.create_connection((host, port), timeout=60)
    h = hashlib.sha256()
    left = total
    while left > 0:
        chunk = os.urandom(min(left, 1 << 20))
        s.sendall(chunk)
        h.update(chunk)
        left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(60)
    while s.recv(65536):  # wait for the receiver to close: everything arrived
        pass
    s.close()
    print(json.dumps({"bytes": total, "sha256": h.hexdigest()}))


def udp_echo(host, port, seconds):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    print("listening", file=sys.stderr, flush=True)
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, peer = s.recvfrom(65535)
        except socket.timeout:
            break
        s.sendto(data, peer)


def udp_check(host, port, count):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.connect((host, port))
    echoed = mismatched = retries = 0
    for i in range(count):
        size = 8 + (i * 7919) % 1193  # 8 .. 1200 bytes
        payload = i.to_bytes(4, "big") + os.urandom(size - 4)
        for attempt in range(3):
            if attempt:
                retries += 1
            s.send(payload)
            outcome = await_echo(s, payload)
            if outcome == "echoed":
                echoed += 1
            elif outcome == "mismatch":
                mismatched += 1
            if outcome != "timeout":
                break
    print(json.dumps({"sent": count, "echoed": echoed, "mismatched": mismatched, "retries": retries}))


def await_echo(s, payload):
    """"echoed" when the echo of payload arrives within 1 s, "mismatch" when a datagram with its
    sequence number but other content does, else "timeout". Late echoes of earlier datagrams (other
    sequence numbers) are skipped."""
    deadline = time.monotonic() + 1.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        s.settimeout(left)
        try:
            data = s.recv(65535)
        except socket.timeout:
            return "timeout"
        if data == payload:
            return "echoed"
        if data[:4] == payload[:4]:
            return "mismatch"


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    arg = sys.argv[4] if len(sys.argv) == 5 else "0"
    if cmd == "tcp-recv":
        tcp_recv(host, port)
    elif cmd == "tcp-send":
        tcp_send(host, port, int(arg))
    elif cmd == "udp-echo":
        udp_echo(host, port, float(arg))
    elif cmd == "udp-check":
        udp_check(host, port, int(arg))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
