#!/usr/bin/env python3
"""Mixed loopback load against soak-server, bounded in time, with a verdict.

    load.py --port PORT --pid SERVER_PID --seconds N [--report-every S]

Clients (asyncio, one process): keep-alive, pipelined, close-per-request, slow (trickling
request bytes, reading slowly), resetting (RST mid-request and mid-response), large request
bodies (Content-Length and chunked), large responses, and an idle crowd that sends a request
now and then. Every answer is checked (status, length, bytes, order).

Errors are counted by kind. Resets this script causes are expected and counted apart; every
other failure is unexpected. The server's RSS is sampled from /proc/PID/status.

Exit status: 0 when the server is alive and answered /stats at the end, no unexpected error
occurred, and RSS did not grow beyond noise. Noise: the median RSS of the last 10% of the
run (under the same load) may exceed the warmed-up baseline (the median over the first 10%
of the run after a 20 s warm-up) by at most max(16 MiB, 25% of the baseline).
"""

import argparse
import asyncio
import collections
import os
import random
import socket
import struct
import sys
import time

KIB = bytes(i % 251 for i in range(1024))
REQUEST_TIMEOUT = 30.0


class Stats:
    def __init__(self):
        self.served = collections.Counter()     # kind -> requests answered correctly
        self.expected = collections.Counter()   # resets we caused, and their kinds
        self.errors = collections.Counter()     # unexpected failures by kind
        self.examples = {}                      # kind -> first message

    def error(self, kind, detail=""):
        self.errors[kind] += 1
        self.examples.setdefault(kind, detail)

    @property
    def total(self):
        return sum(self.served.values())


class Unexpected(Exception):
    def __init__(self, kind, detail=""):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


async def read_response(reader, head_only=False):
    """Reads one response; returns (status, headers dict lower-cased, body bytes)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise Unexpected("eof-before-response", repr(e.partial[:80]))
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise Unexpected("bad-status-line", lines[0][:80])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_only:
        return status, headers, b""
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                body += await reader.readexactly(size)
                if await reader.readexactly(2) != b"\r\n":
                    raise Unexpected("bad-chunk-framing")
            return status, headers, bytes(body)
        if "content-length" in headers:
            return status, headers, await reader.readexactly(int(headers["content-length"]))
        return status, headers, await reader.read()
    except asyncio.IncompleteReadError as e:
        raise Unexpected("eof-inside-body", f"{len(e.partial)} of {e.expected}")


def get(path, close=False):
    extra = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: soak\r\n{extra}\r\n".encode()


def post(path, body, chunked=False, close=False):
    extra = "Connection: close\r\n" if close else ""
    if not chunked:
        return (f"POST {path} HTTP/1.1\r\nHost: soak\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                .encode() + body)
    out = bytearray(f"POST {path} HTTP/1.1\r\nHost: soak\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
                    .encode())
    position = 0
    while position < len(body):
        size = random.randint(1, 70_000)
        piece = body[position:position + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        position += size
    out += b"0\r\n\r\n"
    return bytes(out)


def expect(condition, kind, detail=""):
    if not condition:
        raise Unexpected(kind, detail)


def check_ok(status, body, expected_body):
    expect(status == 200, "bad-status", str(status))
    if expected_body is not None and body != expected_body:
        raise Unexpected("wrong-body", f"{len(body)} bytes, expected {len(expected_body)}")


def random_body(size):
    return random.randbytes(size)


def reset_socket(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Load:
    def __init__(self, port, deadline, stats):
        self.port = port
        self.deadline = deadline
        self.stats = stats

    def running(self):
        return time.monotonic() < self.deadline

    async def connect(self):
        try:
            return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22),
                                          REQUEST_TIMEOUT)
        except (ConnectionError, OSError) as e:
            raise Unexpected("connect-failed", repr(e))

    async def worker(self, name, body):
        """Runs body() until the deadline, classifying what goes wrong."""
        while self.running():
            try:
                await asyncio.wait_for(body(), REQUEST_TIMEOUT * 4)
            except Unexpected as e:
                self.stats.error(f"{name}:{e.kind}", e.detail)
            except asyncio.TimeoutError:
                self.stats.error(f"{name}:timeout")
            except ConnectionResetError as e:
                self.stats.error(f"{name}:reset-by-server", repr(e))
            except (ConnectionError, OSError) as e:
                self.stats.error(f"{name}:{type(e).__name__}", repr(e))
            except Exception as e:  # a bug here, not in the server: count it loudly
                self.stats.error(f"{name}:loadgen-{type(e).__name__}", repr(e))
            await asyncio.sleep(random.uniform(0.001, 0.01))

    # The clients ---------------------------------------------------------------------------

    async def keep_alive(self):
        reader, writer = await self.connect()
        try:
            for _ in range(random.randint(20, 200)):
                if not self.running():
                    break
                choice = random.random()
                if choice < 0.6:
                    writer.write(get("/hello"))
                    status, _, body = await read_response(reader)
                    check_ok(status, body, b"Hello, World!")
                elif choice < 0.8:
                    payload = random_body(random.randint(0, 4096))
                    writer.write(post("/echo", payload))
                    status, _, body = await read_response(reader)
                    check_ok(status, body, payload)
                elif choice < 0.9:
                    kb = random.randint(1, 128)
                    writer.write(get(f"/large?kb={kb}"))
                    status, _, body = await read_response(reader)
                    check_ok(status, body, KIB * kb)
                else:
                    ms = random.randint(1, 100)
                    writer.write(get(f"/slow?ms={ms}"))
                    status, _, body = await read_response(reader)
                    check_ok(status, body, f"slow {ms}".encode())
                self.stats.served["keep-alive"] += 1
                await asyncio.sleep(random.uniform(0, 0.005))
        finally:
            writer.close()

    async def pipelined(self):
        reader, writer = await self.connect()
        try:
            for _ in range(random.randint(5, 30)):
                if not self.running():
                    break
                count = random.randint(2, 50)
                batch = bytearray()
                expected = []
                for k in range(count):
                    if random.random() < 0.2:
                        payload = random_body(random.randint(0, 2000))
                        batch += post("/echo", payload, chunked=random.random() < 0.5)
                        expected.append(payload)
                    elif random.random() < 0.05:
                        batch += get("/slow?ms=5")
                        expected.append(b"slow 5")
                    else:
                        batch += get(f"/seq?n={k}")
                        expected.append(str(k).encode())
                writer.write(bytes(batch))
                for k in range(count):
                    status, _, body = await read_response(reader)
                    if body != expected[k]:
                        raise Unexpected("out-of-order-or-wrong", f"#{k}: {body[:40]!r}")
                    expect(status == 200, "bad-status", str(status))
                    self.stats.served["pipelined"] += 1
        finally:
            writer.close()

    async def close_per_request(self):
        reader, writer = await self.connect()
        try:
            if random.random() < 0.5:
                writer.write(get("/hello", close=True))
                expected = b"Hello, World!"
            else:
                expected = random_body(random.randint(0, 8192))
                writer.write(post("/echo", expected, close=True))
            status, headers, body = await read_response(reader)
            check_ok(status, body, expected)
            expect(headers.get("connection", "").lower() == "close", "no-connection-close")
            rest = await asyncio.wait_for(reader.read(), 5)
            expect(rest == b"", "bytes-after-close", repr(rest[:40]))
            self.stats.served["close-per-request"] += 1
        finally:
            writer.close()

    async def slow(self):
        reader, writer = await self.connect()
        try:
            if random.random() < 0.5:
                # Trickles a head (well inside the server's 10 s head deadline).
                request = get("/hello")
                for i in range(0, len(request), 4):
                    writer.write(request[i:i + 4])
                    await writer.drain()
                    await asyncio.sleep(0.03)
                status, _, body = await read_response(reader)
                check_ok(status, body, b"Hello, World!")
            else:
                # Trickles a body, then reads a large answer slowly.
                payload = random_body(8192)
                request = post("/echo", payload, chunked=random.random() < 0.5)
                for i in range(0, len(request), 512):
                    writer.write(request[i:i + 512])
                    await writer.drain()
                    await asyncio.sleep(0.01)
                status, _, body = await read_response(reader)
                check_ok(status, body, payload)
                self.stats.served["slow"] += 1
                writer.write(get("/large?kb=512"))
                head = await reader.readuntil(b"\r\n\r\n")
                expect(head.startswith(b"HTTP/1.1 200"), "bad-status", head[:20].decode("latin-1"))
                received = bytearray()
                while len(received) < 512 * 1024 + 64:  # chunked framing included
                    piece = await reader.read(16384)
                    if not piece:
                        raise Unexpected("eof-inside-body")
                    received += piece
                    if received.endswith(b"\r\n0\r\n\r\n"):
                        break
                    await asyncio.sleep(0.002)
            self.stats.served["slow"] += 1
        finally:
            writer.close()

    async def resetting(self):
        reader, writer = await self.connect()
        what = random.choice(["partial-head", "partial-body", "mid-response", "after-request"])
        if what == "partial-head":
            writer.write(b"GET /hello HTTP/1.1\r\nHost: so")
        elif what == "partial-body":
            writer.write(b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 100000\r\n\r\n" + KIB * 10)
        elif what == "mid-response":
            writer.write(get("/large?kb=4096"))
            head = await reader.readuntil(b"\r\n\r\n")
            expect(head.startswith(b"HTTP/1.1 200"), "bad-status", head[:20].decode("latin-1"))
            await reader.read(random.randint(1, 65536))
        else:
            writer.write(get(f"/slow?ms={random.randint(1, 30)}"))
        await writer.drain()
        await asyncio.sleep(random.uniform(0, 0.02))
        reset_socket(writer)
        self.stats.expected[f"reset-{what}"] += 1

    async def large_bodies(self):
        reader, writer = await self.connect()
        try:
            for _ in range(random.randint(1, 5)):
                payload = random_body(random.randint(64 * 1024, 2 * 1024 * 1024))
                chunked = random.random() < 0.5
                writer.write(post("/echo", payload, chunked=chunked))
                await writer.drain()
                status, _, body = await read_response(reader)
                check_ok(status, body, payload)
                self.stats.served["large-body-chunked" if chunked else "large-body-length"] += 1
        finally:
            writer.close()

    async def large_responses(self):
        reader, writer = await self.connect()
        try:
            for _ in range(random.randint(1, 5)):
                kb = random.choice([65, 256, 1024, 4096])
                writer.write(get(f"/large?kb={kb}"))
                status, _, body = await read_response(reader)
                check_ok(status, body, KIB * kb)
                self.stats.served["large-response"] += 1
        finally:
            writer.close()

    async def idle_crowd(self, size):
        """Connections that mostly sit idle, each asking something every 2-15 s."""
        async def one():
            while self.running():
                try:
                    reader, writer = await self.connect()
                except Unexpected as e:
                    self.stats.error(f"idle:{e.kind}", e.detail)
                    await asyncio.sleep(1)
                    continue
                try:
                    while self.running():
                        await asyncio.sleep(min(random.uniform(2, 15), max(0, self.deadline - time.monotonic())))
                        if not self.running():
                            break
                        writer.write(get("/hello"))
                        status, _, body = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
                        check_ok(status, body, b"Hello, World!")
                        self.stats.served["idle-crowd"] += 1
                except Unexpected as e:
                    self.stats.error(f"idle:{e.kind}", e.detail)
                except asyncio.TimeoutError:
                    self.stats.error("idle:timeout")
                except (ConnectionError, OSError) as e:
                    self.stats.error(f"idle:{type(e).__name__}", repr(e))
                finally:
                    writer.close()
        await asyncio.gather(*(one() for _ in range(size)))


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


async def fetch(port, path):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    writer.write(get(path, close=True))
    status, _, body = await asyncio.wait_for(read_response(reader), 10)
    writer.close()
    return status, body.decode()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--report-every", type=float, default=60)
    parser.add_argument("--idle", type=int, default=200)
    args = parser.parse_args()

    stats = Stats()
    started = time.monotonic()
    load = Load(args.port, started + args.seconds, stats)
    samples = []  # (seconds since start, RSS KiB)

    def sample():
        value = rss_kib(args.pid)
        if value is not None:
            samples.append((time.monotonic() - started, value))
        return value

    print(f"RSS at start: {sample()} KiB", flush=True)
    mix = [("keep-alive", load.keep_alive, 8), ("pipelined", load.pipelined, 4),
           ("close-per-request", load.close_per_request, 4), ("slow", load.slow, 4),
           ("reset", load.resetting, 2), ("large-body", load.large_bodies, 2),
           ("large-response", load.large_responses, 2)]
    tasks = [asyncio.create_task(load.worker(name, body)) for name, body, count in mix for _ in range(count)]
    tasks.append(asyncio.create_task(load.idle_crowd(args.idle)))

    crashed = False
    last_report = time.monotonic()
    last_total = 0
    while load.running():
        await asyncio.sleep(min(1.0, max(0.0, load.deadline - time.monotonic())))
        if not alive(args.pid):
            crashed = True
            break
        sample()
        if time.monotonic() - last_report >= args.report_every:
            interval = time.monotonic() - last_report
            rate = (stats.total - last_total) / interval
            last_report, last_total = time.monotonic(), stats.total
            print(f"[{time.monotonic() - started:7.0f} s] served {stats.total} ({rate:.0f}/s)  "
                  f"RSS {samples[-1][1]} KiB  unexpected errors {sum(stats.errors.values())}  "
                  f"resets caused {sum(stats.expected.values())}", flush=True)
    load.deadline = 0
    await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT * 4 + 5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    end_under_load = samples[-1][1] if samples else None

    # Let lingering closes finish, then ask the server how many connections it holds.
    connections_left = None
    if not crashed and alive(args.pid):
        await asyncio.sleep(3)
        try:
            status, text = await fetch(args.port, "/stats")
            print(f"server /stats after the load: {text}")
            connections_left = int(text.split()[1]) - 1  # minus the /stats connection itself
        except Exception as e:  # noqa: BLE001
            stats.error("final-stats", repr(e))
    else:
        crashed = True
    rss_idle = rss_kib(args.pid)

    # The verdict.
    duration = args.seconds
    rss_values = [v for _, v in samples]
    warm_from = min(20.0, duration * 0.2)
    baseline_window = [v for t, v in samples if warm_from <= t <= warm_from + max(duration * 0.1, 5)]
    final_window = [v for t, v in samples if t >= duration * 0.9]
    median = lambda values: sorted(values)[len(values) // 2] if values else None  # noqa: E731
    baseline, final = median(baseline_window), median(final_window)
    allowed = max(16 * 1024, baseline // 4) if baseline else None

    print()
    print(f"duration {duration:.0f} s; requests served {stats.total} "
          f"({stats.total / max(duration, 1):.0f}/s)")
    for kind, count in sorted(stats.served.items()):
        print(f"  served {kind:22} {count}")
    print(f"expected (resets this load caused): {sum(stats.expected.values())}")
    for kind, count in sorted(stats.expected.items()):
        print(f"  {kind:30} {count}")
    print(f"unexpected errors: {sum(stats.errors.values())}")
    for kind, count in sorted(stats.errors.items()):
        print(f"  {kind:30} {count}   e.g. {stats.examples.get(kind, '')[:100]}")
    print(f"server RSS KiB: start {rss_values[0] if rss_values else '?'}, warmed baseline {baseline}, "
          f"max {max(rss_values) if rss_values else '?'}, end of load {end_under_load} "
          f"(median of last 10%: {final}), idle after load {rss_idle}; allowed growth {allowed}")
    print(f"connections left open after the load: {connections_left}")

    failures = []
    if crashed:
        failures.append("the server died")
    if stats.errors:
        failures.append(f"{sum(stats.errors.values())} unexpected errors")
    if baseline and final and final > baseline + allowed:
        failures.append(f"RSS grew from {baseline} to {final} KiB (allowed {allowed})")
    if connections_left not in (0, None):
        failures.append(f"{connections_left} connections still open")
    print("SOAK " + ("FAILED: " + "; ".join(failures) if failures else "PASSED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
