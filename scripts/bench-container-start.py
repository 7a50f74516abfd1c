#!/usr/bin/env python3
"""What the engine spends on the steps of one session launch, without berth: create, an
archive upload into the created container (what berth does for dotfiles and links), and
start, each timed over Docker's own socket (no CLI in between). Four shapes, alternating in
the same run so that all see the same load: plain; with one port published on 127.0.0.1 (as
berth publishes app and SSH ports); with a small archive upload before start; with both.
Prints the median of each step per shape.

Usage: python3 scripts/bench-container-start.py [ROUNDS]   (default 10)
Needs: a running engine on /var/run/docker.sock, the berth/base image and the berth-sessions
network (`scripts/setup.sh` or one `berth serve` makes both).
"""
import http.client
import io
import json
import socket
import statistics
import sys
import tarfile
import time

IMAGE = "berth/base:latest"
NETWORK = "berth-sessions"


class Unix(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost")

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/var/run/docker.sock")


def call(method, path, body=None, content_type="application/json"):
    c = Unix()
    headers = {"Content-Type": content_type} if body is not None else {}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return json.loads(data) if data else None


def small_archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name in ["etc/berth/a", "etc/berth/b", "etc/berth/c"]:
            data = b"x" * 300
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def launch(port, archive):
    body = {
        "Image": IMAGE,
        "Cmd": ["sleep", "1000"],
        "User": "1000:1000",
        "HostConfig": {"NetworkMode": NETWORK, "Init": True, "CapDrop": ["ALL"]},
    }
    if port:
        body["ExposedPorts"] = {"2200/tcp": {}}
        body["HostConfig"]["PortBindings"] = {
            "2200/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]
        }
    t0 = time.perf_counter()
    cid = call("POST", "/containers/create", body)["Id"]
    t1 = time.perf_counter()
    if archive:
        call("PUT", f"/containers/{cid}/archive?path=/", archive, "application/x-tar")
    t2 = time.perf_counter()
    call("POST", f"/containers/{cid}/start")
    t3 = time.perf_counter()
    call("DELETE", f"/containers/{cid}?force=1")
    return [(t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (t3 - t0) * 1000]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    archive = small_archive()
    shapes = {
        "plain": (False, None),
        "published port": (True, None),
        "archive upload": (False, archive),
        "port + archive": (True, archive),
    }
    results = {name: [] for name in shapes}
    for _ in range(rounds):
        for name, (port, arch) in shapes.items():
            results[name].append(launch(port, arch))
    print(f"| shape ({rounds} rounds, medians) | create | archive | start | total |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"| {name} | {med[0]:.0f} ms | {med[1]:.0f} ms | {med[2]:.0f} ms | {med[3]:.0f} ms |")


if __name__ == "__main__":
    main()
