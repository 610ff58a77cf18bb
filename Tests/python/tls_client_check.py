"""Python's ssl module and http.client against an HTTPS server on 127.0.0.1.

Usage: tls_client_check.py PORT CAFILE

Serves as the client side of TLSTests: each check prints "ok NAME" and the first failure
raises (exit status 1, the traceback on stderr). The server answers GET /hello with
"Hello, World!".
"""
import http.client
import socket
import ssl
import sys

PORT = int(sys.argv[1])
CAFILE = sys.argv[2]


def context(version=None, alpn=None):
    ctx = ssl.create_default_context(cafile=CAFILE)
    if version is not None:
        # Let OpenSSL offer versions its default security level no longer offers, so that
        # the server, not this client, is what refuses them.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = version
        ctx.maximum_version = version
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


def get(ctx, path="/hello", headers=None):
    connection = http.client.HTTPSConnection("localhost", PORT, context=ctx, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    version = connection.sock.version()
    alpn = connection.sock.selected_alpn_protocol()
    connection.close()
    return response.status, body, version, alpn


def ok(name):
    print("ok", name, flush=True)


for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
    status, body, negotiated, _ = get(context(version))
    assert (status, body, negotiated) == (200, b"Hello, World!", name), (status, body, negotiated)
    ok(name + " accepted")

for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
    try:
        get(context(version))
    except ssl.SSLError as error:
        text = str(error).upper().replace("_", " ")
        assert "PROTOCOL VERSION" in text or "UNSUPPORTED PROTOCOL" in text, text
        assert "NO PROTOCOLS AVAILABLE" not in text, "the client did not offer " + version.name
    else:
        raise AssertionError(version.name + " was accepted")
    ok(version.name + " refused")

status, body, _, alpn = get(context(alpn=["h2", "http/1.1"]))
assert (status, alpn) == (200, "http/1.1"), (status, alpn)
ok("ALPN chooses http/1.1 over h2")

try:
    get(context(alpn=["h2"]))
except ssl.SSLError as error:
    assert "NO APPLICATION PROTOCOL" in str(error).upper().replace("_", " "), error
else:
    raise AssertionError("a client offering only h2 was served")
ok("ALPN without http/1.1 refused (no_application_protocol)")

status, _, _, alpn = get(context())
assert (status, alpn) == (200, None), (status, alpn)
ok("no ALPN offered, served")


def read_to_end(tls):
    """The bytes until the end, and whether the end was a close_notify."""
    data = b""
    while True:
        try:
            chunk = tls.recv(65536)
        except ssl.SSLEOFError:
            return data, False
        if not chunk:
            return data, True
        data += chunk


def raw(ctx=None):
    plain = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    return (ctx or context()).wrap_socket(plain, server_hostname="localhost", suppress_ragged_eofs=False)


tls = raw()
tls.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data, clean = read_to_end(tls)
tls.close()
assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"Hello, World!"), data
assert clean, "the server closed without close_notify"
ok("close_notify before the server closes")

tls = raw()
tls.sendall(b"GET /hello HTTP/1.0\r\n\r\n")
socket.socket.shutdown(tls, socket.SHUT_WR)  # TCP's FIN, no close_notify
data, clean = read_to_end(tls)
tls.close()
assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"Hello, World!"), data
ok("a client's missing close_notify is a normal end")

tls = raw()
for _ in range(3):
    tls.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
    response = http.client.HTTPResponse(tls)
    response.begin()
    assert response.status == 200 and response.read() == b"Hello, World!"
    assert not response.will_close
tls.close()
ok("keep-alive: three requests on one session")
