"""Load: concurrent logged-in users on the ranking API and pages of a running server, for a fixed time.

    .venv/bin/python bench/load.py --url http://127.0.0.1:8106 [--users 20] [--seconds 60]
        [--login engineer:tokenboard --login manager:tokenboard ...]

Each virtual user is a thread with its own session: it logs in through the login form (the demo's logins by
default: admin, manager and engineer, password "tokenboard", taken in turn), then, with no think time, sends
requests drawn from MIX (a fixed seed per user) until the time is up. Every answer that is not a 2xx, and every
connection error or timeout, counts as an error. Prints, as markdown for docs/PERFORMANCE.md: requests, requests
per second, p50/p95/p99/max latency and errors, overall and per request kind, with the load average before and
after. Exits non-zero on any error.

Only a server on this machine is a target (a loopback address); the run stops by itself after --seconds.
Start the server first, e.g. gunicorn as the Procfile runs it (docs/PERFORMANCE.md, Load).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import ipaddress
import os
import platform
import random
import re
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

DEMO_LOGINS = ("admin:tokenboard", "manager:tokenboard", "engineer:tokenboard")
# (kind, path, weight): the ranking API and the pages people open most. "{person}" is a person id taken from
# the 30-day ranking as the user sees it.
MIX = (
    ("API people 30d", "/api/v1/leaderboard/people/?period=30d", 4),
    ("API people month", "/api/v1/leaderboard/people/?period=month", 2),
    ("API people week", "/api/v1/leaderboard/people/?period=week", 1),
    ("API teams 30d", "/api/v1/leaderboard/teams/?period=30d", 2),
    ("API person 30d", "/api/v1/people/{person}/?period=30d", 1),
    ("page / 30d", "/?period=30d", 3),
    ("page /teams/ 30d", "/teams/?period=30d", 1),
    ("page /movers/", "/movers/", 1),
    ("page /people/<id>/ 30d", "/people/{person}/?period=30d", 1),
)
TIMEOUT = 30.0


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, error: str = "") -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            if error:
                self.errors.setdefault(kind, []).append(error)

    def fail(self, kind: str, error: str) -> None:
        with self.lock:
            self.errors.setdefault(kind, []).append(error)


def loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        sys.exit(f"{url}: only a server on this machine (a loopback address) may be loaded")


class Session:
    """One user's cookies (session, CSRF) over urllib; each request is its own connection, as gunicorn's sync
    workers close them anyway."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with self.opener.open(self.base + path, timeout=TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def login(self, username: str, password: str) -> None:
        status, body = self.get("/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or token is None:
            raise RuntimeError(f"login page: HTTP {status}")
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token[1].decode(), "next": "/profile/"}
        ).encode()
        request = urllib.request.Request(self.base + "/accounts/login/", data=data, headers={"Referer": self.base})
        with self.opener.open(request, timeout=TIMEOUT) as response:
            if not response.url.endswith("/profile/"):
                raise RuntimeError(f"login as {username} failed (landed on {response.url})")


def person_ids(session: Session) -> list[int]:
    status, body = session.get("/api/v1/leaderboard/people/?period=30d")
    if status != 200:
        raise RuntimeError(f"people ranking: HTTP {status}")
    ids = [int(i) for i in re.findall(rb'"person":\{"id":(\d+)', body)]
    if not ids:
        raise RuntimeError("no one is ranked in the last 30 days: load the demo (seed_demo) or a bench database")
    return ids


@dataclass
class Clock:
    """The timed run starts once every user has logged in (the barrier's action), so logins are not timed."""

    seconds: float
    started: float = 0.0

    def start(self) -> None:
        self.started = time.monotonic()

    def running(self) -> bool:
        return time.monotonic() < self.started + self.seconds


def user_loop(number: int, base: str, login: str, clock: Clock, results: Results, ready: threading.Barrier):
    rng = random.Random(1000 + number)
    kinds = [kind for kind, _path, _weight in MIX]
    paths = {kind: path for kind, path, _weight in MIX}
    weights = [weight for _kind, _path, weight in MIX]
    session = Session(base)
    username, password = login.split(":", 1)
    try:
        session.login(username, password)
        people = person_ids(session)
    except (OSError, RuntimeError) as failure:
        results.fail("login", f"{username}: {failure}")
        ready.wait()
        return
    ready.wait()
    while clock.running():
        kind = rng.choices(kinds, weights)[0]
        path = paths[kind].format(person=rng.choice(people))
        started = time.perf_counter()
        try:
            status, _body = session.get(path)
            error = "" if 200 <= status < 300 else f"HTTP {status} {path}"
        except (OSError, urllib.error.URLError) as failure:
            error = f"{type(failure).__name__}: {failure} {path}"
        results.record(kind, time.perf_counter() - started, error)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def table_row(label: str, latencies: list[float], errors: int, seconds: float) -> str:
    ms = [value * 1000 for value in latencies]
    return (
        f"| {label} | {len(ms):,} | {len(ms) / seconds:.1f} | {statistics.median(ms):,.0f} | "
        f"{percentile(ms, 0.95):,.0f} | {percentile(ms, 0.99):,.0f} | {max(ms):,.0f} | {errors} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8106")
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default 20)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to load (default 60)")
    parser.add_argument(
        "--login", action="append", help="username:password, repeatable, taken in turn (default: the demo logins)"
    )
    args = parser.parse_args()
    if not 1 <= args.users <= 200 or not 0 < args.seconds <= 600:
        sys.exit("--users must be 1-200 and --seconds at most 600")
    loopback_only(args.url)
    logins = args.login or list(DEMO_LOGINS)
    results = Results()
    clock = Clock(args.seconds)
    ready = threading.Barrier(args.users, action=clock.start)
    print(
        f"machine: {platform.system()} {platform.machine()}, nproc {os.cpu_count()}; Python {platform.python_version()}"
    )
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"{args.users} users for {args.seconds:g} s against {args.url} (logins: {', '.join(login.split(':')[0] for login in logins)})"
    )
    threads = [
        threading.Thread(
            target=user_loop, args=(n, args.url, logins[n % len(logins)], clock, results, ready), daemon=True
        )
        for n in range(args.users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + 2 * TIMEOUT + 60)
    elapsed = time.monotonic() - clock.started
    load_after = os.getloadavg()
    everything = [value for values in results.latencies.values() for value in values]
    error_count = sum(len(errors) for errors in results.errors.values())
    print(f"load average after: {' '.join(f'{v:.2f}' for v in load_after)}")
    print()
    if not everything:
        sys.exit(f"no request was timed; errors: {results.errors}")
    print("| requests | count | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(table_row("**all**", everything, error_count, elapsed))
    for kind, _path, _weight in MIX:
        if kind in results.latencies:
            print(table_row(kind, results.latencies[kind], len(results.errors.get(kind, [])), elapsed))
    for kind, errors in results.errors.items():
        print(f"\nerrors of {kind} (first 5 of {len(errors)}): {errors[:5]}")
    sys.exit(1 if error_count else 0)


if __name__ == "__main__":
    main()
