"""`make bench`: ingestion and settlement at several sizes, each beside the raw database
limit measured in the same run, with peak memory; results as JSON and PNG plots.

    python -m bench [--sizes 10000,100000] [--full] [--only ingest|settle]
                    [--ingest-members 100000] [--workers 2] [--profile] [--out bench/results]

- ingestion (bench/ingest.py): one generic CSV report of N lines uploaded through gunicorn
  until its commissions and postings are committed, beside `psql \\copy` of the same file;
  peak RSS of the web worker.
- settlement (bench/settle.py): a run for N payable members, plan + approve + execute on
  rq workers with the PayPal sandbox and the points partners' files, beside a GROUP BY of
  the same balances and a raw INSERT ... SELECT of the run's ledger legs; peak RSS of the
  rq processes (work horses included).
- exchanges (bench/exchange.py): point-site members asking for exchanges at once at 100,000
  members (each request its own transaction over 8 connections), beside single-row INSERT
  transactions over the same connections.
- `--profile`: also bench/profile.py (cProfile + time per SQL statement) at the largest
  size up to 100,000.

`--full` measures 10k, 100k and 1M (about 10 minutes on 2 cores). Writes
OUT/bench.json, OUT/ingest.png, OUT/settle.png (and OUT/profile-*.txt).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from bench import exchange, ingest, plot, settle
from bench.common import ROOT, code_version, machine

FULL = [10_000, 100_000, 1_000_000]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated sizes: report lines and run members "
                             "(default 10000,100000)")
    parser.add_argument("--full", action="store_true", help="sizes 10000,100000,1000000")
    parser.add_argument("--only", choices=("ingest", "settle", "exchange"), default=None)
    parser.add_argument("--ingest-members", type=int, default=100_000,
                        help="members the ingestion reports' lines spread over")
    parser.add_argument("--workers", type=int, default=2, help="rq workers for settlement")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the hot paths (bench/profile.py)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    sizes = FULL if args.full else sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    data = {"measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "code": code_version(), "sizes": sizes,
            "ingest_members": args.ingest_members,
            "workers": args.workers, "ingest": [], "settle": []}
    print(f"bench: sizes {', '.join(f'{s:,}' for s in sizes)} on "
          f"{data['machine'].get('cpus')} CPUs, PostgreSQL {data['machine'].get('postgresql')}",
          flush=True)
    path = out / "bench.json"
    if args.only in (None, "ingest"):
        print(f"ingestion through HTTP (gunicorn, 1 worker, job in the request), "
              f"{args.ingest_members:,} members:", flush=True)
        data["ingest"] = ingest.run(sizes, args.ingest_members)
        path.write_text(json.dumps(data, indent=2))
    if args.only in (None, "settle"):
        print(f"settlement runs ({args.workers} rq workers, PayPal sandbox, partner files):",
              flush=True)
        for size in sizes:
            data["settle"].append(settle.run(size, args.workers))
            path.write_text(json.dumps(data, indent=2))
    if args.only in (None, "exchange"):
        print("exchanges (point sites, 100,000 members, 8 connections):", flush=True)
        data["exchange"] = [exchange.run(100_000, 5_000, 8)]
        path.write_text(json.dumps(data, indent=2))
    if args.profile:
        small = max([s for s in sizes if s <= 100_000] or [min(sizes)])
        print(f"profiling the hot paths at {small:,} ...", flush=True)
        from bench import profile
        data["profiles"] = [p.name for p in profile.run(
            small if args.only in (None, "ingest") else 0,
            small if args.only in (None, "settle") else 0, out, args.ingest_members)]
    data["elapsed_s"] = round(time.perf_counter() - started, 1)
    path.write_text(json.dumps(data, indent=2))
    pngs = plot.draw(data, out)
    _summary(data)
    print(f"written {path}" + "".join(f", {p}" for p in pngs), flush=True)


def _summary(data: dict) -> None:
    if data["ingest"]:
        print("\ningestion          lines    seconds    lines/s  \\copy rows/s  ratio  "
              "keyed copy rows/s  keyed ratio  peak MB")
        for r in data["ingest"]:
            print(f"            {r['lines']:>11,} {r['seconds']:>10.2f} {r['lines_per_s']:>10,} "
                  f"{r['copy_rows_per_s']:>13,} {r['ratio']:>6.3f} "
                  f"{r['keyed_copy_rows_per_s']:>18,} {r['keyed_ratio']:>12.3f} "
                  f"{r['peak_rss_mb']:>8.1f}")
    if data["settle"]:
        print("\nsettlement       members    total s  members/s   plan/s  GROUP BY/s  "
              "raw write/s  peak MB")
        for r in data["settle"]:
            print(f"            {r['members']:>11,} {r['total_s']:>10.2f} "
                  f"{r['members_per_s']:>10,} "
                  f"{r['plan_members_per_s']:>8,} {r['group_by_members_per_s']:>11,} "
                  f"{r['raw_write_members_per_s']:>12,} {r['peak_rss_mb']:>8.1f}")
    for r in data.get("exchange", []):
        print(f"\nexchanges  {r['members']:>11,} members  {r['accepted_per_s']:>8,} accepted/s  "
              f"raw single-row INSERT {r['raw_inserts_per_s']:>8,}/s  ratio {r['ratio']:.3f}")
    print(f"\n(bench took {data['elapsed_s']} s)")


if __name__ == "__main__":
    main()
