"""U1 client for Scripts/bench: one large PUT over loopback.

    upload_client.py --port PORT --pid SERVER_PID --dir DIR --bytes N [--server NAME --round R]

Sends `PUT /u1-R.bin` with Content-Length N, the body from one 1 MiB buffer sent again and
again, and reads the response head. Times the first byte sent to the response, and charges
the server the CPU time (utime + stime over its process tree: the thread pool of ours
included) it used meanwhile, in 10 ms clock ticks: coarse for a body of a few MiB. Then
checks that DIR/u1-R.bin holds N bytes. Prints one JSON line; the caller removes the file.
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


def upload(s, name, size):
    """Sends the request on the connected socket s; returns the response's status code
    (None if the server closed without one)."""
    chunk = memoryview(bytes(range(256)) * (CHUNK // 256))
    s.sendall(f"PUT /{name} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
    remaining = size
    while remaining:
        piece = chunk[:min(remaining, CHUNK)]
        s.sendall(piece)
        remaining -= len(piece)
    head = b""
    while b"\r\n" not in head:
        data = s.recv(4096)
        if not data:
            return None
        head += data
    return int(head.split(b" ", 2)[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--bytes", type=int, default=1 << 30)
    parser.add_argument("--timeout", type=float, default=60.0, help="per socket operation")
    parser.add_argument("--server", default="?")
    parser.add_argument("--round", type=int, default=1)
    args = parser.parse_args()

    name = f"u1-{args.round}.bin"
    result = {"scenario": "U1", "server": args.server, "round": args.round,
              "bytes": args.bytes, "errors": 0}
    try:
        s = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
    except OSError as error:
        result.update({"errors": 1, "failed": True, "note": f"connect failed: {error}"})
        print(json.dumps(result), flush=True)
        return
    # Walking /proc takes milliseconds: the readings bracket the timed interval.
    ticks0 = tree_usage(args.pid)[0]
    busy0 = cpu_busy(2)
    with s:
        start = time.perf_counter()
        try:
            status = upload(s, name, args.bytes)
            note = "" if status in (201, 204) else f"status {status}"
        except (OSError, ValueError, IndexError) as error:
            status, note = None, f"upload failed: {error}"
        seconds = time.perf_counter() - start
    ticks, rss = tree_usage(args.pid)
    busy1 = cpu_busy(2)
    cpu_s = (ticks - ticks0) / CLOCK_TICKS
    try:
        stored = os.stat(os.path.join(args.dir, name)).st_size
    except OSError:
        stored = None
    if not note and stored != args.bytes:
        note = f"stored {stored} bytes of {args.bytes}"

    result.update({
        "status": status,
        "stored_bytes": stored,
        "seconds": seconds,
        "mb_s": args.bytes / 1e6 / seconds,
        "cpu_s": cpu_s,
        "cpu_s_per_gb": cpu_s / (args.bytes / 1e9),
        "rss_kb": rss,
        # As in the wrk scenarios: how much of CPU 0 the server used, and what everything
        # else used of CPU 0 and CPU 1 meanwhile (the noise indicator).
        "server_cpu_pct": cpu_s / seconds * 100,
        "cpu0_other_pct": ((busy1[0] - busy0[0]) / CLOCK_TICKS - cpu_s) / seconds * 100,
        "cpu1_busy_pct": (busy1[1] - busy0[1]) / CLOCK_TICKS / seconds * 100,
    })
    if note:
        # A rate for an upload that did not complete would only skew the medians.
        result.update({"errors": 1, "failed": True, "note": note,
                       "mb_s": None, "cpu_s_per_gb": None})
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
