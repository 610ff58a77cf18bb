"""Helpers for Scripts/callgrind: the client and the reading of callgrind's output.

    callgrind_tool.py client PORT CONNS ROUNDS [PATH]
                                                 CONNS keep-alive connections; in each of
                                                 ROUNDS rounds every connection sends one
                                                 `GET PATH HTTP/1.1` (PATH `/` unless given)
                                                 and reads its whole 200 response (S2's
                                                 shape: one request in flight per
                                                 connection); prints the number of responses
    callgrind_tool.py counts FILE                JSON: the total instructions (Ir) of a
                                                 callgrind output file, and the calls and
                                                 inclusive Ir of the functions in FUNCTIONS
    callgrind_tool.py report SMALL BIG REQUESTS  one line per figure: (BIG - SMALL) / REQUESTS
                                                 for the counts of two output files

Output files must be written with --compress-strings=no --compress-pos=no (every name
spelled out, every position absolute), which is what Scripts/callgrind passes.
"""
import json
import re
import socket
import sys


def request(path):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

# Counted by name, with callgrind's recursion suffix ('2, '3 ...) folded in: swift_release
# called from a deinit that swift_release ran is still one call.
FUNCTIONS = ("swift_retain", "swift_release", "sched_yield", "uv_run")


def client(port, conns, rounds, path="/"):
    message = request(path)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = [b""] * conns
    answered = 0
    for _ in range(rounds):
        for s in socks:
            s.sendall(message)
        for i, s in enumerate(socks):
            pending[i] = read_response(s, pending[i])
            answered += 1
    for s in socks:
        s.close()
    return answered


def read_response(sock, buf):
    """Reads one whole response (head and Content-Length body); returns what follows it."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end]
            if not head.startswith(b"HTTP/1.1 200 "):
                raise SystemExit(f"callgrind_tool: unexpected response {head[:60]!r}")
            match = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
            if not match:
                raise SystemExit("callgrind_tool: response without Content-Length")
            size = end + 4 + int(match.group(1))
            if len(buf) >= size:
                return buf[size:]
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("callgrind_tool: the server closed a connection")
        buf += chunk


def counts(path):
    """Total Ir, and calls and inclusive Ir per function in FUNCTIONS, of one output file."""
    total = None
    calls = dict.fromkeys(FUNCTIONS, 0)
    inclusive = dict.fromkeys(FUNCTIONS, 0)
    target = None
    after_calls = False
    with open(path) as f:
        for line in f:
            if after_calls:
                # The line after calls= is the call's position and its inclusive cost.
                after_calls = False
                fields = line.split()
                if target is not None and len(fields) > 1:
                    inclusive[target] += int(fields[1])
                continue
            if line.startswith("cfn="):
                name = re.sub(r"'\d+$", "", line[4:].strip())
                target = name if name in calls else None
            elif line.startswith("calls="):
                if target is not None:
                    calls[target] += int(line[6:].split()[0])
                after_calls = True
            elif line.startswith("totals:") or (total is None and line.startswith("summary:")):
                total = int(line.split()[1])
    if total is None:
        raise SystemExit(f"callgrind_tool: no totals in {path} (did the server exit cleanly?)")
    return {"instructions": total, "calls": calls, "inclusive": inclusive}


def report(small_path, big_path, requests):
    small, big = counts(small_path), counts(big_path)
    per = lambda key, name=None: (  # noqa: E731
        (big[key] - small[key]) if name is None else (big[key][name] - small[key][name])
    ) / requests
    print(f"instructions/request {per('instructions'):.0f}")
    print(f"swift_retain/request {per('calls', 'swift_retain'):.2f}")
    print(f"swift_release/request {per('calls', 'swift_release'):.2f}")
    # Diagnostics, on stderr: what retain and release cost inclusive, how many loop
    # iterations a request took, and empty busy-poll iterations (each yields once).
    print(
        f"(inclusive Ir/request: swift_retain {per('inclusive', 'swift_retain'):.1f},"
        f" swift_release {per('inclusive', 'swift_release'):.1f};"
        f" uv_run calls/request {per('calls', 'uv_run'):.3f};"
        f" empty poll iterations (sched_yield) {big['calls']['sched_yield'] - small['calls']['sched_yield']};"
        f" totals {small['instructions']} and {big['instructions']})",
        file=sys.stderr,
    )


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "client":
        print(client(int(argv[2]), int(argv[3]), int(argv[4]), *argv[5:6]))
    elif command == "counts":
        print(json.dumps(counts(argv[2])))
    elif command == "report":
        report(argv[2], argv[3], int(argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
