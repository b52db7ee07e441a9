"""Shared by the benchmark scripts' summaries: hyperfine's JSON exports of several rounds
(DIR/BENCH-ROUND.json), pooled per command, and durations for the tables."""
import json
import statistics


def load(jdir, bench, rounds):
    """{command: {"times", "median", "cpu" (mean user+system)}} over every round, and the
    per-round medians [{command: median}]."""
    pooled, per_round = {}, []
    for r in range(rounds):
        with open(f"{jdir}/{bench}-{r}.json") as f:
            res = json.load(f)["results"]
        per_round.append({x["command"]: x["median"] for x in res})
        for x in res:
            p = pooled.setdefault(x["command"], {"times": [], "cpu": 0.0})
            p["times"] += x["times"]
            p["cpu"] += (x["user"] + x["system"]) * len(x["times"])
    for p in pooled.values():
        p["median"] = statistics.median(p["times"])
        p["cpu"] /= len(p["times"])
    return pooled, per_round


def fmt(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
