#!/usr/bin/env python3
"""Latency of the playground (`make serve` running): names requests and a 300-word review with per-word saliency.

Usage: python3 bench/serve_load.py [--url http://127.0.0.1:8000] [--n 200]
Prints p50/p95/max per request kind and how many models answered. Standard library only.
"""
import argparse, json, statistics, time, urllib.request

REVIEW_WORDS = ("the film opens slowly but the acting is superb and the story kept me watching until a moving "
                "ending that i did not expect at all ").split()


def post(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        answer = json.load(r)
    return time.perf_counter() - t, answer


def measure(url, path, bodies):
    times, models = [], 0
    for b in bodies:
        dt, a = post(url, path, b)
        times.append(dt * 1000)
        models = len(a["models"])
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"{path:<16} {len(times):>4} requests, {models} models: p50 {p(0.5):7.1f} ms  p95 {p(0.95):7.1f} ms  "
          f"max {times[-1]:7.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    names = ["Nakamura", "Dovesky", "Schmidt", "O'Neal", "Rossi", "Nguyen", "Kowalski", "Dubois"]
    measure(a.url, "/api/names", [{"text": names[i % len(names)]} for i in range(a.n)])
    review = " ".join((REVIEW_WORDS * 20)[:300])
    measure(a.url, "/api/sentiment", [{"text": review} for _ in range(max(a.n // 10, 10))])


if __name__ == "__main__":
    main()
