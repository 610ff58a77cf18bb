"""Talks to a running server with Python's own http.client; exits non-zero on any mismatch.

Usage: python3 http_client_check.py PORT
The server must run the test suite's EchoHandler (it echoes method, path, version, headers
and body as text).
"""
import http.client
import sys


def check(condition, what):
    if not condition:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def main(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    # Several requests on one keep-alive connection.
    for index in range(5):
        conn.request("GET", "/item/%d?x=1" % index, headers={"X-Test": "yes"})
        response = conn.getresponse()
        body = response.read().decode()
        check(response.status == 200, "status of GET %d" % index)
        check(response.version == 11, "HTTP/1.1 response")
        check(response.getheader("Content-Length") == str(len(body)), "Content-Length")
        check(body.startswith("GET /item/%d?x=1 HTTP/1.1\n" % index), "request line echoed")
        check("X-Test: yes" in body, "header echoed")
        check(not response.will_close, "connection kept open")

    # A POST body with Content-Length, then one sent chunked.
    conn.request("POST", "/form", body=b"a=1&b=2",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    body = conn.getresponse().read().decode()
    check("body 7: a=1&b=2" in body, "POST body read through rfile")

    conn.request("POST", "/chunked", body=iter([b"hello ", b"chunked ", b"world"]),
                 encode_chunked=True)
    body = conn.getresponse().read().decode()
    check("body 19: hello chunked world" in body, "chunked body decoded")

    # HEAD: headers and no body.
    conn.request("HEAD", "/head")
    response = conn.getresponse()
    check(response.status == 200 and response.read() == b"", "HEAD has no body")

    # An unsupported method: 501 with Python's message, and the connection closes.
    conn.request("DELETE", "/x")
    response = conn.getresponse()
    check(response.status == 501, "DELETE is 501")
    check(response.reason == "Unsupported method ('DELETE')", "501 reason")
    response.read()
    check(response.will_close, "error closes the connection")
    conn.close()

    # HTTP/1.0 client.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"
    conn.request("GET", "/old")
    response = conn.getresponse()
    check(response.read().decode().startswith("GET /old HTTP/1.0"), "HTTP/1.0 request")
    check(response.will_close, "HTTP/1.0 closes")
    conn.close()
    print("http.client: all checks passed")


if __name__ == "__main__":
    main(int(sys.argv[1]))
