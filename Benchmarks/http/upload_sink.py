"""U1 peer for Scripts/bench: `python3 upload_sink.py PORT DIR`.

The limit on this machine for storing an upload: one connection at a time, the request
head read, then exactly Content-Length bytes received into one 1 MiB buffer (recv_into a
memoryview: no allocation per chunk) and written with os.write to a hidden temporary file
in DIR, which is closed and renamed into place, as http-server --upload does; then
`201 Created` and the next request. No HTTP beyond that: no chunked bodies, no Expect, one
path component as the name. Not fsynced before answering, like http-server.
"""
import os
import socket
import sys

BUFFER = 1 << 20


def read_head(conn, pending):
    """Reads until the end of the head. Returns (head, body bytes already read); head is
    None when the peer closed first."""
    while b"\r\n\r\n" not in pending:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def respond(conn, status):
    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())


def write_all(fd, data):
    while data:  # a short write to a file is rare, not impossible
        data = data[os.write(fd, data):]


def store(conn, directory, name, length, already, view):
    """Writes the body (`already` holds its first bytes) to a temporary file, renames it to
    name. Returns the bytes read past the body (a pipelined request), or None on EOF."""
    temporary = os.path.join(directory, f".upload-sink-{os.getpid()}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        first = already[:length]
        write_all(fd, first)
        remaining = length - len(first)
        while remaining:
            received = conn.recv_into(view[:min(remaining, BUFFER)])
            if not received:
                return None
            write_all(fd, view[:received])
            remaining -= received
    finally:
        os.close(fd)
    os.rename(temporary, os.path.join(directory, name))
    return already[length:]


def serve(conn, directory, view):
    pending = b""
    while True:
        head, pending = read_head(conn, pending)
        if head is None:
            return
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value)
        name = target.lstrip("/")
        if method != "PUT" or not name or "/" in name or name.startswith("."):
            respond(conn, "400 Bad Request")
            return
        pending = store(conn, directory, name, length, pending, view)
        if pending is None:
            return
        respond(conn, "201 Created")


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    view = memoryview(bytearray(BUFFER))
    with socket.create_server(("127.0.0.1", port), backlog=16) as server:
        print(f"upload_sink listening on 127.0.0.1:{port}, storing in {directory}", flush=True)
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    serve(conn, directory, view)
                except (OSError, ValueError) as error:
                    print(f"upload_sink: {error}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
