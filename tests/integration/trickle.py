#!/usr/bin/env python3
"""Slow clients for the kortvagtd integration tests (test_sec_daemon.sh).

trickle.py --port P [--host 127.0.0.1] [--src 127.0.0.1] --conns N
           [--interval 0.3] [--max-seconds 12] [--ready FILE] --out FILE

Opens N connections from the source address --src, sends the start of a
request's headers on each, then one more header byte on every connection
still open each --interval seconds, never finishing the request. A
connection counts as closed when the server ends it (end of stream, reset,
or a failed send). Stops when every connection is closed or after
--max-seconds. --ready FILE is written ("opened N") once all connections are
open, so that a test can order its next step by it; --out FILE gets one JSON
object: {"opened", "refused", "closed", "open", "first_close", "last_close",
"elapsed"} (times in seconds since the last connection was opened).
"""
import argparse
import json
import os
import resource
import select
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--src", default="127.0.0.1")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.3)
    ap.add_argument("--max-seconds", type=float, default=12)
    ap.add_argument("--ready")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    socks, refused = [], 0
    for _ in range(a.conns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((a.src, 0))
            s.settimeout(5)
            s.connect((a.host, a.port))
            s.sendall(b"POST /v1/authorize HTTP/1.1\r\nHost: kortvagtd\r\nX-Slow: ")
            s.setblocking(False)
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    t0 = time.monotonic()
    if a.ready:
        tmp = a.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("opened %d\n" % len(socks))
        os.replace(tmp, a.ready)

    open_ = {s.fileno(): s for s in socks}
    closes = []

    def close(fd):
        open_.pop(fd).close()
        closes.append(time.monotonic() - t0)

    poller = select.poll()  # not select(): more than 1024 descriptors
    for fd in open_:
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    next_send = t0 + a.interval
    while open_ and time.monotonic() - t0 < a.max_seconds:
        timeout = max(0.0, next_send - time.monotonic())
        for fd, _ in poller.poll(timeout * 1000):
            s = open_.get(fd)
            if s is None:
                continue
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the server ended the connection
                poller.unregister(fd)
                close(fd)
        if time.monotonic() >= next_send:
            next_send += a.interval
            for fd, s in list(open_.items()):
                try:
                    s.send(b"x")
                except BlockingIOError:
                    pass
                except OSError:
                    poller.unregister(fd)
                    close(fd)
    result = {
        "opened": len(socks),
        "refused": refused,
        "closed": len(closes),
        "open": len(open_),
        "first_close": round(min(closes), 3) if closes else None,
        "last_close": round(max(closes), 3) if closes else None,
        "elapsed": round(time.monotonic() - t0, 3),
    }
    for s in open_.values():
        s.close()
    with open(a.out, "w") as f:
        json.dump(result, f)
        f.write("\n")


if __name__ == "__main__":
    main()
