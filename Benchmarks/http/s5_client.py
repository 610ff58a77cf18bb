"""S5 and T3 client for Scripts/bench: many idle keep-alive connections.

    s5_client.py --port PORT --pid SERVER_PID --conns N [--server NAME --round R]
                 [--tls [--cafile CERT] --scenario T3]

1. Warms the server up (200 requests on 4 connections, then closed) and reads its RSS
   (summed over its process tree).
2. Opens N connections, at most --inflight at a time being set up; each sends one
   `GET /` and reads the full 200 response, then stays open and idle.
   With --tls every connection (these, the warm-up's and the extra ones) first makes a
   full TLS 1.3 handshake (no session is offered again), verifying the server's
   certificate against --cafile (and 127.0.0.1 against its subjectAltName) if given.
3. Waits --settle seconds, reads the RSS again: bytes per connection = growth / held.
4. With all of them still open, times --extra requests, each on a new connection
   (connect + handshake with --tls + request + full response); reports the median.
5. Counts idle connections the server closed meanwhile (readable = EOF or reset).
Prints one JSON line.
"""
import argparse
import errno
import json
import os
import resource
import selectors
import socket
import ssl
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_tool import REQUEST, response_complete, tls_client_context, tree_usage  # noqa: E402


def connect(port, timeout, context):
    """Blocking: a new connection, with a TLS handshake made if context is not None."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is None:
        return s
    try:
        return context.wrap_socket(s, server_hostname="127.0.0.1")
    except BaseException:
        s.close()
        raise


def one_request(port, context, timeout=10.0):
    """Blocking: new connection (and handshake), one request, full response. Returns
    (ms, status)."""
    start = time.perf_counter()
    with connect(port, timeout, context) as s:
        s.sendall(REQUEST)
        buffer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return None, None
            buffer += chunk
            status, done = response_complete(buffer)
            if done:
                return (time.perf_counter() - start) * 1e3, status


def warm_up(port, context):
    """Returns the TLS version and cipher negotiated (None without TLS)."""
    negotiated = None
    for _ in range(4):
        with connect(port, 10, context) as s:
            if context is not None:
                negotiated = f"{s.version()} {s.cipher()[0]}"
            for _ in range(50):
                s.sendall(REQUEST)
                buffer = b""
                while not response_complete(buffer)[1]:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("server closed during warm-up")
                    buffer += chunk
    return negotiated


def open_idle(port, count, inflight, deadline, context):
    """Returns (idle sockets, failures, non-200 count). Each connection goes through the
    stages connect, handshake (TLS only), request, response."""
    selector = selectors.DefaultSelector()
    idle, failures, bad = [], 0, 0
    started = 0
    pending = 0

    def start_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = s.connect_ex(("127.0.0.1", port))
        if code not in (0, errno.EINPROGRESS):
            s.close()
            return False
        selector.register(s, selectors.EVENT_WRITE, {"stage": "connect", "buffer": b""})
        return True

    while len(idle) + failures < count:
        while pending < inflight and started < count:
            started += 1
            if start_one():
                pending += 1
            else:
                failures += 1
        if time.monotonic() > deadline:
            break
        for key, mask in selector.select(timeout=1.0):
            s, state = key.fileobj, key.data
            try:
                if state["stage"] == "connect":
                    error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        raise OSError(error, os.strerror(error))
                    if context is None:
                        state["stage"] = "request"
                    else:
                        # The SSLSocket takes the descriptor over from s.
                        selector.unregister(s)
                        s = context.wrap_socket(s, server_hostname="127.0.0.1",
                                                do_handshake_on_connect=False)
                        selector.register(s, selectors.EVENT_WRITE, state)
                        state["stage"] = "handshake"
                if state["stage"] == "handshake":
                    try:
                        s.do_handshake()
                    except ssl.SSLWantReadError:
                        selector.modify(s, selectors.EVENT_READ, state)
                        continue
                    except ssl.SSLWantWriteError:
                        selector.modify(s, selectors.EVENT_WRITE, state)
                        continue
                    state["stage"] = "request"
                if state["stage"] == "request":
                    s.send(REQUEST)  # 36 bytes (plus TLS framing) into an empty buffer
                    state["stage"] = "response"
                    selector.modify(s, selectors.EVENT_READ, state)
                    continue
                # TLS may hold decrypted bytes the selector does not see: read on until
                # it wants more from the socket.
                while True:
                    try:
                        chunk = s.recv(4096)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        break
                    if not chunk:
                        raise OSError("closed before the response")
                    state["buffer"] += chunk
                    status, done = response_complete(state["buffer"])
                    if done:
                        selector.unregister(s)
                        pending -= 1
                        if status != 200:
                            bad += 1
                        idle.append(s)
                        break
                    if context is None:
                        break
            except OSError:
                try:
                    selector.unregister(s)
                except (KeyError, ValueError):
                    pass  # wrap_socket failed after s left the selector
                s.close()
                pending -= 1
                failures += 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()
        failures += 1
    selector.close()
    return idle, failures, bad


def closed_meanwhile(sockets):
    """Idle connections that became readable: EOF or reset. Over TLS, a readable socket
    may hold a record that is no data (a session ticket, say): that one stays open."""
    selector = selectors.DefaultSelector()
    for s in sockets:
        selector.register(s, selectors.EVENT_READ)
    closed = 0
    for key, _ in selector.select(timeout=0):
        s = key.fileobj
        if isinstance(s, ssl.SSLSocket):
            try:
                s.recv(4096)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                pass
        closed += 1
    selector.close()
    return closed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--conns", type=int, default=10000)
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--extra", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--server", default="?")
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--note", default="")
    parser.add_argument("--scenario", default="S5")
    parser.add_argument("--tls", action="store_true", help="HTTPS, TLS 1.3")
    parser.add_argument("--cafile", help="with --tls: verify the server's certificate")
    args = parser.parse_args()
    context = tls_client_context(args.cafile) if args.tls else None

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = {"scenario": args.scenario, "server": args.server, "round": args.round,
              "target": args.conns, "errors": 0}
    notes = [args.note] if args.note else []
    if hard < args.conns + 64:
        notes.append(f"client RLIMIT_NOFILE {hard} < {args.conns} connections")

    negotiated = warm_up(args.port, context)
    if negotiated:
        result["tls"] = negotiated
    time.sleep(0.3)
    result["rss_before_kb"] = tree_usage(args.pid)[1]
    started = time.monotonic()
    idle, failures, bad = open_idle(args.port, args.conns, args.inflight,
                                    started + args.timeout, context)
    result["open_s"] = round(time.monotonic() - started, 2)
    time.sleep(args.settle)
    result["rss_after_kb"] = tree_usage(args.pid)[1]
    result["held"] = len(idle)
    result["connect_failures"] = failures
    result["non200"] = bad
    growth = (result["rss_after_kb"] - result["rss_before_kb"]) * 1024
    result["bytes_per_conn"] = growth / len(idle) if idle else None

    latencies, extra_errors = [], 0
    for _ in range(args.extra):
        try:
            ms, status = one_request(args.port, context)
        except OSError:
            ms, status = None, None
        if status != 200:
            extra_errors += 1
        elif ms is not None:
            latencies.append(ms)
    result["extra_ms"] = statistics.median(latencies) if latencies else None
    result["extra_all_ms"] = [round(x, 3) for x in latencies]
    result["extra_errors"] = extra_errors
    time.sleep(0.2)
    result["closed_by_server"] = closed_meanwhile(idle)
    result["errors"] = failures + bad + extra_errors + result["closed_by_server"]
    if failures:
        notes.append(f"{failures} connections failed")
    if bad:
        notes.append(f"{bad} non-200 responses")
    if extra_errors:
        notes.append(f"{extra_errors} extra requests failed")
    if result["closed_by_server"]:
        notes.append(f"{result['closed_by_server']} idle connections closed by the server")
    result["note"] = "; ".join(notes)
    for s in idle:
        s.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
