#!/usr/bin/python3
"""A small aioice ICE peer for fz-gateway's interop test (stdlib + Debian python3-aioice only).

Run with /usr/bin/python3. It takes the CONTROLLING role by default (like a Firezone client),
gathers host candidates on --bind (or, with --turn ... --relay-only, only a relayed candidate),
writes its parameters as JSON {"ufrag", "pwd", "candidates": ["candidate:..."]} to --local-file,
waits for the other side's parameters in --remote-file (same shape), connects, then sends --send N
datagrams "fzice-ping <i>" and expects each one echoed back, and finally "fzice-bye".

stdout carries exactly one JSON result line:
  {"connected": true, "sent": N, "received": M, "selected_remote": [ip, port]}
or {"connected": false, "error": "..."}; the exit code is 0 only when every ping came back.
"""
import argparse
import asyncio
import json
import os
import sys
import time

import aioice
import aioice.ice


def write_json_atomically(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def wait_for_json(path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.05)
    raise TimeoutError("no remote parameters in " + path)


def strip_prefix(line):
    line = line.strip()
    if line.startswith("a="):
        line = line[2:]
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    return line


async def run(args):
    # Only use the address we were told to. Relay-only: no host sockets at all, because aioice's
    # RELAY policy merely hides host candidates and still runs direct checks from host sockets.
    host_addresses = [] if args.relay_only else [args.bind]
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: host_addresses
    options = dict(ice_controlling=not args.controlled, components=1, use_ipv4=True, use_ipv6=False)
    if args.turn:
        host, _, port = args.turn.rpartition(":")
        options.update(turn_server=(host, int(port)), turn_username=args.turn_user,
                       turn_password=args.turn_pass, turn_transport="udp")
    if args.relay_only:
        options["transport_policy"] = aioice.TransportPolicy.RELAY
    conn = aioice.Connection(**options)
    conn.local_username = args.ufrag
    conn.local_password = args.pwd
    await conn.gather_candidates()
    write_json_atomically(args.local_file, {
        "ufrag": conn.local_username,
        "pwd": conn.local_password,
        "candidates": ["candidate:" + c.to_sdp() for c in conn.local_candidates],
    })

    loop = asyncio.get_running_loop()
    try:
        remote = await loop.run_in_executor(None, wait_for_json, args.remote_file, args.timeout)
    except TimeoutError as e:
        print(json.dumps({"connected": False, "error": str(e)}), flush=True)
        await conn.close()
        return 1
    conn.remote_username = remote["ufrag"]
    conn.remote_password = remote["pwd"]
    for line in remote["candidates"]:
        await conn.add_remote_candidate(aioice.Candidate.from_sdp(strip_prefix(line)))
    await conn.add_remote_candidate(None)

    try:
        await asyncio.wait_for(conn.connect(), args.timeout)
    except Exception as e:  # noqa: BLE001 - report any failure as a result line
        print(json.dumps({"connected": False, "error": repr(e)}), flush=True)
        await conn.close()
        return 1

    pair = conn._nominated.get(1)
    received = 0
    for i in range(args.send):
        msg = ("fzice-ping %d" % i).encode()
        await conn.send(msg)
        try:
            while True:
                data = await asyncio.wait_for(conn.recv(), 3.0)
                if data == msg:
                    received += 1
                    break
        except asyncio.TimeoutError:
            pass
    await conn.send(b"fzice-bye")
    await asyncio.sleep(0.2)
    print(json.dumps({
        "connected": True,
        "sent": args.send,
        "received": received,
        "selected_remote": list(pair.remote_addr) if pair else None,
    }), flush=True)
    await conn.close()
    return 0 if received == args.send else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", required=True, help="local IPv4 address for the host candidate")
    p.add_argument("--ufrag", required=True)
    p.add_argument("--pwd", required=True)
    p.add_argument("--local-file", required=True)
    p.add_argument("--remote-file", required=True)
    p.add_argument("--controlled", action="store_true")
    p.add_argument("--send", type=int, default=5)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--turn", help="TURN server host:port (UDP)")
    p.add_argument("--turn-user")
    p.add_argument("--turn-pass")
    p.add_argument("--relay-only", action="store_true")
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
