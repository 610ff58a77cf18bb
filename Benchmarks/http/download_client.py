"""F3/F4 client for Scripts/bench: large GETs over loopback, the bodies thrown away.

    download_client.py --port PORT --pid SERVER_PID --path /NAME --bytes N
                       [--min-seconds S --min-downloads K]
                       [--scenario F3 --server NAME --round R]

Sends `GET /NAME` on a new connection, reads the response head, then the body into one
1 MiB buffer again and again until Content-Length bytes (or, without one, end of stream);
and again, one download after another, until at least K downloads (default 3) and S
seconds (default 2) have passed. One 256 MiB download takes a tenth of a second, and
single downloads of the same file varied from 1.7 to 4.9 GB/s on this machine: a run of
many gives a figure a round can be compared by. Times each download from its request to
its last body byte; MB/s is all the bytes over the sum of those times. Charges the server
the CPU time (utime + stime over its process tree) it used over the whole run, in 10 ms
clock ticks. Every response must be a 200 with N bytes. Prints one JSON line.
"""
import argparse
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_tool import CLOCK_TICKS, cpu_busy, tree_usage  # noqa: E402

CHUNK = 1 << 20


def download(s, path):
    """Sends the request on the connected socket s; returns (status, content length or
    None, body bytes received)."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = s.recv(65536)
        if not data:
            raise ValueError("connection closed before the response head")
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    received = len(rest)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while length is None or received < length:
        want = CHUNK if length is None else min(CHUNK, length - received)
        n = s.recv_into(view[:want])
        if n == 0:
            break
        received += n
    return status, length, received


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--bytes", type=int, required=True, help="the file's size")
    parser.add_argument("--timeout", type=float, default=60.0, help="per socket operation")
    parser.add_argument("--min-seconds", type=float, default=2.0,
                        help="download again until this much time has passed")
    parser.add_argument("--min-downloads", type=int, default=3)
    parser.add_argument("--scenario", default="F3")
    parser.add_argument("--server", default="?")
    parser.add_argument("--round", type=int, default=1)
    args = parser.parse_args()

    result = {"scenario": args.scenario, "server": args.server, "round": args.round,
              "bytes": args.bytes, "errors": 0}
    # Walking /proc takes milliseconds: the readings bracket the timed interval.
    ticks0 = tree_usage(args.pid)[0]
    busy0 = cpu_busy(2)
    started = time.perf_counter()
    rates, busy_seconds, note = [], 0.0, ""
    while len(rates) < args.min_downloads or time.perf_counter() - started < args.min_seconds:
        try:
            with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as s:
                start = time.perf_counter()
                status, length, received = download(s, args.path)
                seconds = time.perf_counter() - start
        except (OSError, ValueError, IndexError) as error:
            note = f"download {len(rates) + 1} failed: {error}"
            break
        if status != 200:
            note = f"download {len(rates) + 1}: status {status}"
            break
        if received != args.bytes or length not in (None, args.bytes):
            note = f"download {len(rates) + 1}: received {received} bytes of {args.bytes} (Content-Length {length})"
            break
        rates.append(args.bytes / 1e6 / seconds)
        busy_seconds += seconds
    wall = time.perf_counter() - started
    ticks, rss = tree_usage(args.pid)
    busy1 = cpu_busy(2)
    cpu_s = (ticks - ticks0) / CLOCK_TICKS
    total = args.bytes * len(rates)

    result.update({
        "downloads": len(rates),
        "seconds": busy_seconds,
        "mb_s": total / 1e6 / busy_seconds if rates else None,
        "mb_s_min": min(rates, default=None),
        "mb_s_max": max(rates, default=None),
        "cpu_s": cpu_s,
        "cpu_s_per_gb": cpu_s / (total / 1e9) if rates else None,
        "rss_kb": rss,
        # As in the wrk scenarios: how much of CPU 0 the server used, and what everything
        # else used of CPU 0 and CPU 1 meanwhile (the noise indicator).
        "server_cpu_pct": cpu_s / wall * 100,
        "cpu0_other_pct": ((busy1[0] - busy0[0]) / CLOCK_TICKS - cpu_s) / wall * 100,
        "cpu1_busy_pct": (busy1[1] - busy0[1]) / CLOCK_TICKS / wall * 100,
    })
    if note:
        # Rates from a run that did not complete would only skew the medians.
        result.update({"errors": 1, "failed": True, "note": note,
                       "mb_s": None, "cpu_s_per_gb": None})
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
