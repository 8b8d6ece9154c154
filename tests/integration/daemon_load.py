#!/usr/bin/env python3
"""Concurrent clients for the kortvagtd integration tests.

daemon_load.py --url U [--url U2 ...] --token T --body FILE --clients 8
               --requests N [--pause-ms 0] [--out results.json]
               [--progress FILE] [--gate K:FILE ...]

Client i posts the body N times to /v1/authorize on URL i mod len(urls), one
keep-alive connection per client, reconnecting after a failure and never
retrying a request (so every answered decision is counted once). Prints one
JSON summary; --out also writes every result: {"status", "evidence",
"decision", "reason", "error"} (error: the client-side failure, e.g.
"ConnectionRefusedError", for requests that got no HTTP answer).

So that a test can order its steps by what happened instead of by a sleep:
--progress FILE is rewritten (atomically) after every request, as lines
"KEY COUNT": "done N" (requests finished), "answered N" (got an HTTP answer),
"status_200 N", "status_503 N" ..., "errors N"; tests/integration/wait.sh
progress_ge reads it. --gate K:FILE makes every client, once it has finished
K requests, wait until FILE exists before it sends the next one (at most
--gate-timeout seconds, 600), e.g. to hold the end of a run until the test
has restarted a database.
"""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse


class Progress:
    """Counts finished requests; writes them to --progress FILE after each."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.counts = {"done": 0, "answered": 0, "errors": 0}
        self.write()

    def add(self, r):
        with self.lock:
            self.counts["done"] += 1
            if r["status"]:
                self.counts["answered"] += 1
                key = "status_%d" % r["status"]
                self.counts[key] = self.counts.get(key, 0) + 1
            if r["error"]:
                self.counts["errors"] += 1
            self.write()

    def write(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            for k in sorted(self.counts):
                f.write("%s %d\n" % (k, self.counts[k]))
        os.replace(tmp, self.path)


def wait_gates(done, args):
    for k, path in args.gate:
        if done != k:
            continue
        deadline = time.monotonic() + args.gate_timeout
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)


def client(idx, args, body, results, progress):
    url = urllib.parse.urlparse(args.url[idx % len(args.url)])
    conn = None
    for done in range(args.requests):
        wait_gates(done, args)
        r = {"status": 0, "evidence": None, "decision": None, "reason": None, "error": None}
        try:
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            conn.request("POST", "/v1/authorize", body=body,
                         headers={"Authorization": "Bearer " + args.token,
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            r["status"] = resp.status
            try:
                j = json.loads(data)
                r["evidence"] = j.get("evidence")
                r["decision"] = j.get("decision")
                r["reason"] = j.get("reason") or (j.get("error") or {}).get("code")
            except ValueError:
                r["error"] = "bad body"
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            r["error"] = type(e).__name__
            if conn is not None:
                conn.close()
            conn = None
        results.append(r)
        progress.add(r)
        if args.pause_ms:
            time.sleep(args.pause_ms / 1000.0)
    if conn is not None:
        conn.close()


def gate_arg(text):
    k, sep, path = text.partition(":")
    if not sep or not k.isdigit() or not path:
        raise argparse.ArgumentTypeError("want K:FILE, got %r" % text)
    return int(k), path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--pause-ms", type=float, default=0)
    ap.add_argument("--out")
    ap.add_argument("--progress")
    ap.add_argument("--gate", action="append", default=[], type=gate_arg)
    ap.add_argument("--gate-timeout", type=float, default=600)
    args = ap.parse_args()
    body = open(args.body, "rb").read()
    results = []
    progress = Progress(args.progress)
    threads = [threading.Thread(target=client, args=(i, args, body, results, progress))
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = {"total": len(results), "by_status": {}, "by_decision": {}, "errors": {}}
    for r in results:
        summary["by_status"][str(r["status"])] = summary["by_status"].get(str(r["status"]), 0) + 1
        if r["decision"]:
            summary["by_decision"][r["decision"]] = summary["by_decision"].get(r["decision"], 0) + 1
        if r["error"]:
            summary["errors"][r["error"]] = summary["errors"].get(r["error"], 0) + 1
    ids = [r["evidence"] for r in results if r["status"] == 200]
    summary["evidence_ids"] = len(ids)
    summary["evidence_unique"] = len(set(ids))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f)
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
