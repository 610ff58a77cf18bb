"""Helpers for Scripts/bench: process accounting, wrk output parsing, aggregation.

    bench_tool.py free-port                  print a free TCP port on 127.0.0.1
    bench_tool.py wait-port PORT SECONDS     exit 0 once 127.0.0.1:PORT accepts connections
    bench_tool.py idle-wait MAX PERCENT      wait (at most MAX s) until both CPUs are under
                                             PERCENT busy; print the seconds waited
    bench_tool.py proc PID                   "<cpu ticks> <rss kB> <cpu0 busy> <cpu1 busy>":
                                             ticks and RSS summed over PID and its
                                             descendants (nginx's worker, for one), ticks
                                             including the reaped children's (a CGI
                                             script's), then the busy ticks of CPUs 0 and 1
    bench_tool.py record KEY=VALUE ...       one JSON line for a wrk run (see record())
    bench_tool.py tls-check PORT CAFILE      print what is wrong with the HTTPS answer
                                             on PORT, if anything (see tls_check())
    bench_tool.py annotate KEY=VALUE ...     add the access log's line count or a failed
                                             check to the JSON line on stdin (see
                                             annotate())
    bench_tool.py report RESULTS.jsonl MD    print the median table; write it as Markdown to MD
"""
import json
import os
import re
import socket
import ssl
import statistics
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


# --- processes -------------------------------------------------------------------------

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # The command name is in parentheses and may hold spaces; fields resume after ")".
    return text[text.rindex(")") + 2:].split()


def process_tree(root):
    """root and all its descendants that are alive now."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [int(root)]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_usage(root):
    """(utime + stime + cutime + cstime in clock ticks, RSS in kB) over the process tree.

    /proc/PID/stat of a thread-group leader already counts all of its threads, live and
    exited, so threads need no separate walk. Child processes are counted while they live
    (and as zombies: they keep their times until reaped) through their own utime and
    stime, and once reaped through their parent's cutime and cstime, which then hold
    everything the child and its own reaped descendants used: a CGI script that ran and
    was reaped between two samples counts in the difference. (A child reaped between the
    reads of its parent's stat and its own is missed by that one sample.)"""
    ticks = rss = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
            # utime, stime, cutime, cstime (fields 14-17)
            ticks += sum(int(v) for v in fields[11:15])
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return ticks, rss


def cpu_busy(count):
    """Busy clock ticks (everything but idle and iowait) of CPUs 0..count-1 since boot."""
    busy = [0] * count
    with open("/proc/stat") as f:
        for line in f:
            match = re.match(r"cpu(\d+) (.*)", line)
            if match and int(match.group(1)) < count:
                values = [int(v) for v in match.group(2).split()]
                busy[int(match.group(1))] = sum(values[:8]) - values[3] - values[4]
    return busy


# --- HTTP(S) clients -------------------------------------------------------------------

def response_complete(buffer):
    """(status, done) for the bytes read so far; status None until the head is in."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None, False
    head = buffer[:end].decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split()[1])
    except (IndexError, ValueError):
        return -1, True
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, len(buffer) >= end + 4 + length


def tls_client_context(cafile=None):
    """A client context for the T scenarios: TLS 1.3 only. With cafile, the server's
    certificate must chain to it and name 127.0.0.1 (subjectAltName); without, it is not
    verified."""
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _tls_get(port, context, session=None):
    """GET / on a new TLS connection, offering session if given. Returns (status, body,
    the SSLSocket, still open)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = context.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    s.sendall(REQUEST)
    buffer = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed before the response")
        buffer += chunk
        status, done = response_complete(buffer)
        if done:
            return status, buffer[buffer.find(b"\r\n\r\n") + 4:], s


def tls_check(port, cafile):
    """For the T scenarios, before a run: GET / over TLS 1.3, the certificate verified
    against cafile, must answer 200 "Hello, World!"; then a second connection offers the
    first one's session, and the server must not resume it (session cache and tickets
    off: every new connection a full handshake, which T2 means to measure). Returns (what
    is wrong or "", what was negotiated)."""
    context = tls_client_context(cafile)
    try:
        status, body, first = _tls_get(port, context)
    except (OSError, ValueError) as error:
        return f"check: no HTTPS (TLS 1.3) answer: {error}", ""
    with first:
        details = f"{first.version()} {first.cipher()[0]}"
        if status != 200 or body != b"Hello, World!":
            return f"check: expected 200 Hello, World!, got {status} {body[:40]!r}", details
        session = first.session
    try:
        _, _, second = _tls_get(port, context, session)
    except (OSError, ValueError) as error:
        return f"check: second HTTPS connection failed: {error}", details
    with second:
        if second.session_reused:
            return "check: the server resumed a TLS session (resumption must be off)", details
    return "", details + ", resumption refused"


# --- wrk -------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
# wrk prints the bytes it read with binary prefixes: "229.54MB read".
_BYTE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def _ms(value):
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", value)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def parse_wrk(text):
    out = {"requests": None, "rps": None, "p50_ms": None, "p99_ms": None, "non2xx": 0,
           "connect": 0, "read": 0, "write": 0, "timeout": 0, "bytes_read": None}
    match = re.search(r"^\s*(\d+) requests in ([0-9.]+)(\w+)(?:, ([0-9.]+)([KMGT]?B) read)?",
                      text, re.M)
    if match:
        out["requests"] = int(match.group(1))
        if match.group(4):
            # Two decimals of the largest unit: "1.83GB" is 1.825-1.835 GiB, ±5 MiB.
            unit = _BYTE_UNITS[match.group(5)]
            decimals = len(match.group(4).partition(".")[2])
            out["bytes_read"] = round(float(match.group(4)) * unit)
            out["bytes_read_slack"] = round(0.5 * 10 ** -decimals * unit)
    match = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    if match:
        out["rps"] = float(match.group(1))
    for percent, key in (("50", "p50_ms"), ("99", "p99_ms")):
        match = re.search(rf"^\s*{percent}%\s+(\S+)", text, re.M)
        if match:
            out[key] = _ms(match.group(1))
    if out["p99_ms"] == 0 and out["p50_ms"]:
        out["p99_ms"] = None  # wrk prints 0.00us when its histogram misses the percentile
    match = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if match:
        out["non2xx"] = int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      text)
    if match:
        for key, value in zip(("connect", "read", "write", "timeout"), match.groups()):
            out[key] = int(value)
    return out


def record(args):
    """KEY=VALUE arguments: scenario, server, round, wrk (file), before, after (the
    output of `proc` before and after the run), alive (1/0), rc; optional: note (what a
    check before the run found wrong: an error), min_bytes_per_req and max_bytes_per_req
    (bounds on wrk's bytes read per request, headers included: outside them, an error),
    close_delimited=1 (the server's responses have neither Content-Length nor chunked
    encoding and end at the connection's close: wrk completes each at the close, then
    counts that close as a read error; up to one read error per request is moved to
    read_at_close and not counted as an error, the rest are).
    Prints one JSON line."""
    kv = dict(arg.split("=", 1) for arg in args)
    with open(kv["wrk"]) as f:
        text = f.read()
    result = {"scenario": kv["scenario"], "server": kv["server"], "round": int(kv["round"])}
    result.update(parse_wrk(text))
    if kv.get("close_delimited") == "1":
        result["read_at_close"] = min(result["read"], result["requests"] or 0)
        result["read"] -= result["read_at_close"]
    before = [int(v) for v in kv["before"].split()]
    after = [int(v) for v in kv["after"].split()]
    result["rss_kb"] = after[1]
    result["alive"] = kv.get("alive") == "1"
    result["wrk_rc"] = int(kv.get("rc", "0"))
    ticks = after[0] - before[0]
    result["cpu_s"] = ticks / CLOCK_TICKS
    seconds = float(kv["t1"]) - float(kv["t0"])
    # Share of CPU 0 the server used, and what everything else (other processes, softirq)
    # used of CPU 0 and CPU 1 meanwhile: the noise indicator.
    result["server_cpu_pct"] = ticks / CLOCK_TICKS / seconds * 100
    result["cpu0_busy_pct"] = (after[2] - before[2]) / CLOCK_TICKS / seconds * 100
    result["cpu1_busy_pct"] = (after[3] - before[3]) / CLOCK_TICKS / seconds * 100
    result["cpu0_other_pct"] = result["cpu0_busy_pct"] - result["server_cpu_pct"]
    requests = result["requests"]
    result["cpu_us_per_req"] = (ticks / CLOCK_TICKS * 1e6 / requests) if requests else None
    result["errors"] = (result["non2xx"] + result["connect"] + result["read"]
                        + result["write"] + result["timeout"])
    if not requests or not result["alive"] or result["wrk_rc"] != 0:
        result["errors"] += 1
        result["failed"] = True
    notes = [kv["note"]] if kv.get("note") else []
    if requests and result["bytes_read"] is not None:
        per_req = result["bytes_read"] / requests
        slack = result.pop("bytes_read_slack") / requests  # wrk's rounding
        result["bytes_per_req"] = per_req
        low, high = kv.get("min_bytes_per_req"), kv.get("max_bytes_per_req")
        if low is not None and per_req + slack < int(low):
            notes.append(f"{per_req:.0f} bytes read per request, expected at least {low}")
        if high is not None and per_req - slack > int(high):
            notes.append(f"{per_req:.0f} bytes read per request, expected at most {high}")
    if notes:
        result["errors"] += len(notes)
        result["note"] = "; ".join(notes)
    print(json.dumps(result))


def annotate(line, args):
    """Adds to a run's JSON line: log_lines=N, the access log's request lines after the
    run, and check=TEXT, what a check before the run found wrong (empty: nothing).
    The log must hold a line for each request the run completed (wrk's count, or the one
    download): fewer is an error, as the logging would be missing or cut short. A failed
    check is an error."""
    result = json.loads(line)
    kv = dict(arg.split("=", 1) for arg in args)
    notes = []
    if "log_lines" in kv:
        lines = int(kv["log_lines"])
        result["log_lines"] = lines
        expected = result.get("requests") or 1
        if lines < expected and not result.get("failed"):
            notes.append(f"access log has {lines} lines for {expected} requests")
    if kv.get("check"):
        notes.append(kv["check"])
    if notes:
        result["errors"] = result.get("errors", 0) + len(notes)
        if result.get("note"):
            notes.insert(0, result["note"])
        result["note"] = "; ".join(notes)
    print(json.dumps(result))


def progress(line):
    """One line per run on stderr while the benchmark goes."""
    r = json.loads(line)
    head = f"  {r['scenario']} r{r['round']} {r['server']:7s}"
    if r["scenario"] in ("U1", "F3", "F4"):
        mb_s, per_gb = r.get("mb_s"), r.get("cpu_s_per_gb")
        print(f"{head} {_num(mb_s, ',.0f'):>8} MB/s  CPU {_num(per_gb, '.2f')} s/GB"
              f"  errors {r.get('errors')}  server CPU {r.get('server_cpu_pct', 0):.0f}%"
              f"  other on CPU0 {r.get('cpu0_other_pct', 0):.0f}% CPU1 busy"
              f" {r.get('cpu1_busy_pct', 0):.0f}%"
              + (f"  FAILED: {r.get('note')}" if r.get("failed")
                 else f"  ({r['note']})" if r.get("note") else ""))
    elif r["scenario"] in ("S5", "T3"):
        b = r.get("bytes_per_conn")
        extra = r.get("extra_ms")
        print(f"{head} held {r.get('held')}/{r.get('target')}"
              f"  {'-' if b is None else round(b)} B/conn"
              f"  extra {'-' if extra is None else round(extra, 3)} ms"
              f"  errors {r.get('errors')}  {r.get('note', '')}")
    else:
        c = r.get("cpu_us_per_req")
        print(f"{head} {r.get('rps') or 0:>11,.0f} req/s"
              f"  CPU/req {'-' if c is None else round(c, 2)} µs"
              f"  p99 {r.get('p99_ms')} ms  errors {r.get('errors')}"
              f"  server CPU {r.get('server_cpu_pct', 0):.0f}%"
              f"  other on CPU0 {r.get('cpu0_other_pct', 0):.0f}% CPU1 busy"
              f" {r.get('cpu1_busy_pct', 0):.0f}%"
              + ("  FAILED" if r.get("failed") else "")
              + (f"  ({r['read_at_close']} reads at close)" if r.get("read_at_close") else "")
              + (f"  ({r['note']})" if r.get("note") else ""))


# --- report ----------------------------------------------------------------------------

SCENARIOS = {
    "S1": "wrk -t1 -c1: one keep-alive connection",
    "S2": "wrk -t1 -c64: 64 keep-alive connections",
    "S3": "wrk -t1 -c64, 16 requests pipelined per write",
    "S4": "wrk -t1 -c16 -H 'Connection: close': a new connection per request",
    "S5": "idle keep-alive connections (each made one request first)",
    "T1": "HTTPS, wrk -t1 -c64: 64 keep-alive connections",
    "T2": "HTTPS, wrk -t1 -c16 -H 'Connection: close': a full TLS handshake per request",
    "T3": "HTTPS, idle keep-alive connections (each made a handshake and one request)",
    "U1": "one PUT of {size} over loopback, stored on disk",
    "F1": "GET a 4 KiB file, wrk -t1 -c64 keep-alive",
    "F2": "GET a 64 KiB file, wrk -t1 -c64 keep-alive",
    "F3": "GET a {size} file of random bytes, one connection",
    "F4": "GET a {size} file of random bytes, one connection",
    "F5": "GET /dir/, a listing of 1,000 files, wrk -t1 -c16",
    "F6": "GET the 4 KiB file with If-Modified-Since after its mtime (304), wrk -t1 -c64",
    "C1": "GET /cgi-bin/hello.sh, a shell CGI script, wrk -t1 -c16 keep-alive",
}


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _spread(values):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle * 100 if middle else None


def _rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def _time_ms(v):
    if v is None:
        return "-"
    if v < 1:
        return f"{v * 1e3:.0f}µs"
    return f"{v:.2f}ms"


def _num(v, fmt):
    return "-" if v is None else format(v, fmt)


def _ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "-"


def _range(values, fmt):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return "-"
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def _size(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


def report(path, markdown_path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    servers, scenarios = [], []
    for run in runs:
        if run["server"] not in servers:
            servers.append(run["server"])
        if run["scenario"] not in scenarios:
            scenarios.append(run["scenario"])
    scenarios.sort()
    rounds = max((run["round"] for run in runs), default=0)
    text, md = [], []
    notes = []

    def table(title, header, rows):
        widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
        text.append(title)
        for row in [header] + rows:
            text.append("  " + "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                         for i, (c, w) in enumerate(zip(row, widths))))
        text.append("")
        md.append(f"**{title}**")
        md.append("")
        md.append("| " + " | ".join(header) + " |")
        md.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        for row in rows:
            md.append("| " + " | ".join(str(c) for c in row) + " |")
        md.append("")

    for scenario in scenarios:
        group = {s: [r for r in runs if r["scenario"] == scenario and r["server"] == s]
                 for s in servers}
        title = f"{scenario}  {SCENARIOS.get(scenario, '')}  (medians of {rounds} rounds)"
        if scenario in ("S5", "T3"):
            header = ["server", "conns held", "RSS before", "RSS after", "bytes/conn",
                      "extra req", "errors", "ours/peer bytes"]
            med = {}
            for s in servers:
                rs = group[s]
                if not rs:
                    continue
                med[s] = _median([r.get("bytes_per_conn") for r in rs])
            ours = med.get("ours")
            rows = []
            for s in servers:
                rs = group[s]
                if not rs:
                    continue
                errors = sum(r.get("errors", 0) for r in rs)
                held = _median([r.get("held") for r in rs])
                target = _median([r.get("target") for r in rs])
                rows.append([
                    s,
                    f"{_num(held, '.0f')}/{_num(target, '.0f')}",
                    f"{_num(_median([r.get('rss_before_kb') for r in rs]), '.0f')} kB",
                    f"{_num(_median([r.get('rss_after_kb') for r in rs]), '.0f')} kB",
                    _num(med[s], ",.0f"),
                    _time_ms(_median([r.get("extra_ms") for r in rs])),
                    f"{errors}" + (" !" if errors else ""),
                    "-" if s == "ours" else _ratio(ours, med[s]),
                ])
                for r in rs:
                    if r.get("note"):
                        notes.append(f"{scenario} {s} round {r['round']}: {r['note']}")
            table(title, header, rows)
            continue
        if scenario == "U1":
            sizes = " / ".join(_size(n) for n in
                               sorted({r["bytes"] for r in runs if r["scenario"] == "U1"}))
            title = (f"{scenario}  {SCENARIOS[scenario].format(size=sizes)}"
                     f"  (medians of {rounds} rounds)")
            header = ["server", "MB/s", "MB/s min-max", "CPU s/GB", "CPU s/GB min-max",
                      "server CPU", "RSS", "errors", "ours/sink MB/s", "CPU0 other"]
            sink = _median([r.get("mb_s") for r in group.get("sink", [])])
            rows = []
            for s in servers:
                rs = group[s]
                if not rs:
                    continue
                errors = sum(r.get("errors", 0) for r in rs)
                mb_s = _median([r.get("mb_s") for r in rs])
                rss = _median([r.get("rss_kb") for r in rs])
                rows.append([
                    s, _num(mb_s, ",.0f"), _range([r.get("mb_s") for r in rs], ",.0f"),
                    _num(_median([r.get("cpu_s_per_gb") for r in rs]), ".2f"),
                    _range([r.get("cpu_s_per_gb") for r in rs], ".2f"),
                    _num(_median([r.get("server_cpu_pct") for r in rs]), ".0f") + "%",
                    _num(rss and rss / 1024, ".1f") + " MB",
                    f"{errors}" + (" !" if errors else ""),
                    _ratio(mb_s, sink) if s == "ours" else "-",
                    _num(_median([r.get("cpu0_other_pct") for r in rs]), ".0f") + "%",
                ])
                for r in rs:
                    if r.get("errors"):
                        notes.append(f"{scenario} {s} round {r['round']}: "
                                     + (r.get("note") or "error")
                                     + ("" if r.get("alive", True) else ", server died"))
            table(title, header, rows)
            continue
        if scenario in ("F3", "F4"):
            sizes = " / ".join(_size(n) for n in
                               sorted({r["bytes"] for r in runs if r["scenario"] == scenario}))
            title = (f"{scenario}  {SCENARIOS[scenario].format(size=sizes)}"
                     f"  (medians of {rounds} rounds)")
            header = ["server", "MB/s", "MB/s min-max", "CPU s/GB", "CPU s/GB min-max",
                      "server CPU", "RSS", "errors", "ours/peer MB/s", "ours/peer CPU s/GB",
                      "CPU0 other"]
            med = {s: (_median([r.get("mb_s") for r in group[s]]),
                       _median([r.get("cpu_s_per_gb") for r in group[s]]))
                   for s in servers if group[s]}
            o = med.get("ours")
            rows = []
            for s in servers:
                rs = group[s]
                if not rs:
                    continue
                errors = sum(r.get("errors", 0) for r in rs)
                mb_s, per_gb = med[s]
                rss = _median([r.get("rss_kb") for r in rs])
                rows.append([
                    s, _num(mb_s, ",.0f"), _range([r.get("mb_s") for r in rs], ",.0f"),
                    _num(per_gb, ".2f"), _range([r.get("cpu_s_per_gb") for r in rs], ".2f"),
                    _num(_median([r.get("server_cpu_pct") for r in rs]), ".0f") + "%",
                    _num(rss and rss / 1024, ".1f") + " MB",
                    f"{errors}" + (" !" if errors else ""),
                    "-" if s == "ours" or not o else _ratio(o[0], mb_s),
                    "-" if s == "ours" or not o else _ratio(o[1], per_gb),
                    _num(_median([r.get("cpu0_other_pct") for r in rs]), ".0f") + "%",
                ])
                for r in rs:
                    if r.get("errors"):
                        notes.append(f"{scenario} {s} round {r['round']}: "
                                     + (r.get("note") or "error")
                                     + ("" if r.get("alive", True) else ", server died"))
            table(title, header, rows)
            continue
        header = ["server", "req/s", "p50", "p99", "CPU/req", "server CPU", "RSS", "errors",
                  "ours/peer req/s", "ours/peer CPU/req", "spread req/s · CPU/req",
                  "CPU0 other"]
        med = {}
        for s in servers:
            rs = group[s]
            if rs:
                med[s] = {k: _median([r.get(k) for r in rs])
                          for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_kb",
                                    "server_cpu_pct", "cpu0_other_pct")}
        rows = []
        for s in servers:
            rs = group[s]
            if not rs:
                continue
            m = med[s]
            errors = sum(r.get("errors", 0) for r in rs)
            for r in rs:
                if r.get("errors"):
                    detail = ", ".join(f"{k} {r.get(k)}" for k in
                                       ("non2xx", "connect", "read", "write", "timeout")
                                       if r.get(k))
                    if r.get("failed"):
                        detail += (", server died" if not r.get("alive") else "") + \
                                  (f", wrk exit {r.get('wrk_rc')}" if r.get("wrk_rc") else "")
                    if r.get("note"):
                        detail += ", " + r["note"]
                    notes.append(f"{scenario} {s} round {r['round']}: {detail.strip(', ')}")
            o = med.get("ours")
            rows.append([
                s, _rate(m["rps"]), _time_ms(m["p50_ms"]), _time_ms(m["p99_ms"]),
                _num(m["cpu_us_per_req"], ".2f") + " µs",
                _num(m["server_cpu_pct"], ".0f") + "%",
                _num(m["rss_kb"] and m["rss_kb"] / 1024, ".1f") + " MB",
                f"{errors}" + (" !" if errors else ""),
                "-" if s == "ours" or not o else _ratio(o["rps"], m["rps"]),
                "-" if s == "ours" or not o else _ratio(o["cpu_us_per_req"],
                                                        m["cpu_us_per_req"]),
                _num(_spread([r.get("rps") for r in rs]), ".0f") + "% · "
                + _num(_spread([r.get("cpu_us_per_req") for r in rs]), ".0f") + "%",
                _num(m["cpu0_other_pct"], ".0f") + "%",
            ])
        table(title, header, rows)

    footer = ["ratios: ours/peer; req/s above 1 and CPU/req below 1 favour ours.",
              "server CPU: the server's CPU time over the run / wall time (100% = CPU 0 "
              "saturated).",
              "spread: (max - min) / median over the rounds.",
              "CPU0 other: CPU 0 busy time not charged to the server (other processes, "
              "softirq); high = a noisy run.",
              "errors: non-2xx + socket errors (connect, read, write, timeout) summed over "
              "rounds; must be 0."]
    if any(s.startswith("T") for s in scenarios):
        footer += ["T: HTTPS on ours (bench-server --tls-cert --tls-key --no-tls-resumption) "
                   "and nginx (one worker, ssl_session_cache off, ssl_session_tickets off): "
                   "TLS 1.3 only, an ECDSA P-256 self-signed certificate made for the bench "
                   "run, session resumption off, so every new connection is a full "
                   "handshake (T2 req/s = handshakes/s). Before each run a check asks for / "
                   "over TLS 1.3 and offers the session back on a second connection; no "
                   "answer or a resumed session is an error.",
                   "T2: wrk makes its side of each handshake on its one thread, and that "
                   "side can cost more CPU than the server's: with CPU 1 near 100% busy and "
                   "the server's CPU well under, req/s is wrk's limit, and CPU/req the "
                   "figure to compare.",
                   "T3: as S5 (bytes/conn = the server's RSS growth / connections held), "
                   "over TLS; the extra request includes its handshake."]
    if "U1" in scenarios:
        footer += ["U1: MB/s = 10^6 bytes per second from the first byte sent to the "
                   "response; CPU s/GB: the server's CPU seconds per 10^9 bytes stored; sink: "
                   "a plain Python recv_into/os.write loop, the limit on this machine.",
                   "U1 goal: ours/sink MB/s at least 0.80×."]
    if any(s.startswith("F") for s in scenarios):
        footer += ["F: ours = http-server -b 127.0.0.1 -d DIR (default configuration); "
                   "lighttpd: one process, sendfile backend, mod_dirlisting; nginx: one "
                   "worker, sendfile, open_file_cache, autoindex; python: `python3 -m "
                   "http.server` as typed (HTTP/1.0: a connection per request). Each logs "
                   "every request to a file on disk; a log with fewer lines than requests "
                   "is an error.",
                   "F3/F4: downloads one after another, each on a new connection, for at "
                   "least 2 s (and at least 3); MB/s = 10^6 bytes per second from each "
                   "request to its last body byte, over the run; CPU s/GB: the server's CPU "
                   "seconds per 10^9 bytes sent; ratios "
                   "ours/peer: MB/s above 1 and CPU s/GB below 1 favour ours.",
                   "F1/F2/F5/F6: a curl before each run checks the answer (F6: 304 without a "
                   "body), and wrk's bytes read per request must fit (F6: under 4 KiB); a "
                   "failed check is an error."]
    if any(s.startswith("C") for s in scenarios):
        footer += ["C1: ours = http-server --cgi -b 127.0.0.1 -d DIR; lighttpd: one process, "
                   "mod_cgi (the script executed directly); python: `python3 -m http.server "
                   "--cgi` as typed (HTTP/1.0: a connection per request). Each forks and execs "
                   "/bin/sh per request; CPU/req includes the scripts' CPU (the server's "
                   "cutime+cstime once it reaped them). Each logs every request to a file on "
                   "disk; a log with fewer lines than requests is an error. A curl before each "
                   "run checks for 200 and the body Hello, World!\\n; a failed check is an "
                   "error.",
                   "C1: a response that ends at the connection's close (no Content-Length, "
                   "not chunked: python's) makes wrk count a read error after completing it; "
                   "when the check saw such a response, up to one read error per request is "
                   "not counted as an error (read_at_close in results.jsonl). wrk also opens "
                   "a connection it drops at once after each such response, so python "
                   "accepts two connections per request."]
    if notes:
        footer.append("flagged:")
        footer.extend("  " + n for n in notes)
    text.extend(footer)
    md.extend(["- " + line.strip() for line in footer])
    print("\n".join(text))
    with open(markdown_path, "w") as f:
        f.write("\n".join(md) + "\n")


# --- ports -----------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def idle_wait(max_seconds, threshold):
    """Waits until both CPUs were under threshold % busy over half a second, at most
    max_seconds. Returns the seconds waited."""
    start = time.monotonic()
    while True:
        before = cpu_busy(2)
        time.sleep(0.5)
        after = cpu_busy(2)
        busiest = max(a - b for a, b in zip(after, before)) / CLOCK_TICKS / 0.5 * 100
        waited = time.monotonic() - start
        if busiest < threshold or waited >= max_seconds:
            return round(waited, 1)


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "free-port":
        print(free_port())
    elif command == "wait-port":
        sys.exit(0 if wait_port(int(argv[2]), float(argv[3])) else 1)
    elif command == "idle-wait":
        print(idle_wait(float(argv[2]), float(argv[3])))
    elif command == "proc":
        ticks, rss = tree_usage(int(argv[2]))
        print(ticks, rss, *cpu_busy(2))
    elif command == "record":
        record(argv[2:])
    elif command == "tls-check":
        problem, details = tls_check(int(argv[2]), argv[3])
        print(details, file=sys.stderr)
        print(problem)
    elif command == "annotate":
        annotate(sys.stdin.read(), argv[2:])
    elif command == "progress":
        progress(sys.stdin.read())
    elif command == "report":
        report(argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
