#!/usr/bin/python3
"""X-of-Y day-matching baselines with pandas, the way an analyst would.

The pandas side of the baseline benchmark (issue 5, docs/BENCHMARKS.md,
baseline/benchdata): reads the data set flexhub's engine reads (a folder
with meta.json and data.bin, written by baseline/benchdata), computes the
high 4-of-5 and 10-of-10 baselines of every resource for the event window
and the verification (baseline minus measured, summed over the intervals
with a reading), writes the results as CSV, and prints its timings and peak
memory as one JSON line on stdout.

    baseline_pandas.py DATA_DIR OUT_CSV [--filter-first] [--method=NAME]...

--method=NAME computes only the named methods (high4of5, 10of10; all by
default): what a settlement run of one product computes.

Method, vectorised: load a long table (resource, UTC timestamp, mWh; a
missing reading is an absent row), convert to the resources' local time,
pivot to one row per resource and local day with one column per quarter
hour, take the event window's columns, mask ineligible days (other day type,
the resource's own event days, incomplete window, outside the lookback,
not before the event day), keep each resource's Y most recent eligible days,
rank them by energy in the window (ties to the more recent day), and
average the X highest column by column. --filter-first keeps only the
window's quarter hours before pivoting (cheaper for pandas; same results).

Needs Debian's python3-pandas (apt-get install -y python3-pandas).
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd

METHODS = [("high4of5", 4, 5), ("10of10", 10, 10)]


def read(data_dir):
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    n, t = meta["resources"], meta["intervals"]
    path = os.path.join(data_dir, "data.bin")
    values = np.fromfile(path, dtype="<i8", count=n * t)
    missing = np.fromfile(path, dtype=np.uint8, count=n * t, offset=n * t * 8).astype(bool)
    start = pd.Timestamp(meta["start"])
    ts = pd.date_range(start, periods=t, freq=pd.Timedelta(seconds=meta["step_seconds"]))
    keep = ~missing
    df = pd.DataFrame({
        "resource": np.repeat(np.arange(n, dtype=np.int32), t)[keep],
        "ts": np.tile(ts.values, n)[keep],
        "mwh": values[keep],
    })
    df["ts"] = df["ts"].dt.tz_localize("UTC")
    excluded = pd.DataFrame(
        [(r, d) for r, days in enumerate(meta["excluded"]) for d in (days or [])],
        columns=["resource", "day"],
    )
    excluded["day"] = pd.to_datetime(excluded["day"])
    return meta, df, excluded


def compute(meta, df, excluded, filter_first, methods):
    tz = meta["tz"]
    h0, m0 = map(int, meta["window_start"].split(":"))
    h1, m1 = map(int, meta["window_end"].split(":"))
    w0, w1 = (h0 * 60 + m0) // 15, (h1 * 60 + m1) // 15
    cols = list(range(w0, w1))
    event_day = pd.Timestamp(meta["event_day"])

    local = df["ts"].dt.tz_convert(tz)
    slot = (local.dt.hour * 60 + local.dt.minute) // 15
    day = local.dt.tz_localize(None).dt.normalize()
    long = pd.DataFrame({"resource": df["resource"], "day": day, "slot": slot, "mwh": df["mwh"]})
    if filter_first:
        long = long[(long["slot"] >= w0) & (long["slot"] < w1)]
    wide = long.set_index(["resource", "day", "slot"])["mwh"].unstack("slot")
    win = wide.reindex(columns=cols)

    # the event day's readings (verification)
    measured = win.xs(event_day, level="day")

    # eligibility of every resource-day
    res_idx = win.index.get_level_values("resource")
    day_idx = win.index.get_level_values("day")
    working = day_idx.dayofweek < 5  # no holidays in the data set
    event_working = event_day.dayofweek < 5
    is_excluded = win.index.isin(pd.MultiIndex.from_frame(excluded[["resource", "day"]]))
    complete = win.notna().all(axis=1).to_numpy()
    base = complete & (working == event_working) & ~is_excluded & (day_idx < event_day)

    out = {}
    for name, x, y in methods:
        lookback = 3 * y + 14
        eligible = base & (day_idx >= event_day - pd.Timedelta(days=lookback))
        e = win[eligible].copy()
        e["energy"] = e[cols].sum(axis=1)
        e = e.reset_index()
        # the Y most recent eligible days
        e = e.sort_values(["resource", "day"], ascending=[True, False])
        e = e[e.groupby("resource").cumcount() < y]
        count = e.groupby("resource").size()
        full = count.index[count == y]
        e = e[e["resource"].isin(full)]
        # the X highest, ties to the more recent day
        e = e.sort_values(["resource", "energy", "day"], ascending=[True, False, False])
        chosen = e[e.groupby("resource").cumcount() < x]
        bl = chosen.groupby("resource")[cols].mean()
        days = chosen.sort_values(["resource", "day"], ascending=[True, False]).groupby("resource")["day"].agg(list)
        m = measured.reindex(bl.index)
        delivered = (bl - m).sum(axis=1, skipna=True)
        out[name] = (bl, days, m.notna().sum(axis=1), m.sum(axis=1, skipna=True), delivered)
    return out


def write(meta, out, path, methods):
    with open(path, "w") as f:
        f.write("method,resource,rule,chosen,baseline,measured,measured_mwh,delivered_mwh\n")
        for name, _, _ in methods:
            bl, days, nmeas, mmeas, delivered = out[name]
            have = set(bl.index)
            rows = bl.to_numpy()
            pos = {r: i for i, r in enumerate(bl.index)}
            for r in range(meta["resources"]):
                if r not in have:
                    f.write(f"{name},{r},baseline.insufficient_history,,,,,\n")
                    continue
                i = pos[r]
                chosen = ";".join(d.strftime("%Y-%m-%d") for d in days[r])
                vals = ";".join(repr(float(v)) for v in rows[i])
                f.write(f"{name},{r},,{chosen},{vals},{int(nmeas[r])},{int(mmeas[r])},{float(delivered[r])!r}\n")


def peak_rss_kib():
    """The process's peak resident set (VmHWM), KiB. Not getrusage's
    ru_maxrss: Linux carries that over exec from the process that started
    this one."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    filter_first = "--filter-first" in sys.argv[1:]
    names = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--method=")]
    methods = [m for m in METHODS if not names or m[0] in names]
    if len(args) != 2 or len(methods) != len(names or METHODS):
        sys.exit("usage: baseline_pandas.py DATA_DIR OUT_CSV [--filter-first] [--method=%s]..." % "|".join(m[0] for m in METHODS))
    t0 = time.perf_counter()
    meta, df, excluded = read(args[0])
    t1, c1 = time.perf_counter(), time.process_time()
    out = compute(meta, df, excluded, filter_first, methods)
    t2, c2 = time.perf_counter(), time.process_time()
    write(meta, out, args[1], methods)
    t3 = time.perf_counter()
    print(json.dumps({
        "read_s": t1 - t0,
        "compute_s": t2 - t1,
        "compute_cpu_s": c2 - c1,
        "write_s": t3 - t2,
        "rows": int(len(df)),
        "maxrss_kib": peak_rss_kib(),
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
