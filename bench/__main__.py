"""`python -m bench [--quick] [--runs N] [--only a,b]`: run the scenarios against real
processes, print one JSON line per run, then the summary; results go to bench/results/."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.brokers import BROKER_SCENARIOS
from bench.load import have_wrk
from bench.procs import AUXILIARY, UNDER_TEST, Receiver
from bench.report import markdown, ratios, summarise, targets
from bench.scenarios import POSTGRES_SCENARIOS, SCENARIOS, Env

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} × {model}, Python {platform.python_version()}, {system}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (< 60 s)")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument(
        "--db", choices=("sqlite", "postgres"), default="sqlite",
        help="postgres: the PostgreSQL scenarios beside their SQLite counterparts",
    )  # fmt: skip
    parser.add_argument(
        "--brokers", action="store_true",
        help="delivery into and ingest from RabbitMQ, NATS and Redis beside their HTTP peers",
    )  # fmt: skip
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    scenarios = POSTGRES_SCENARIOS if args.db == "postgres" else SCENARIOS
    if args.brokers:
        scenarios = BROKER_SCENARIOS
    names = [n for n in args.only.split(",") if n] or list(scenarios)
    workdir = Path(tempfile.mkdtemp(prefix="billhook-bench-"))
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "conditions": (
            f"{'SQLite and PostgreSQL 15 side by side' if args.db == 'postgres' else 'SQLite'}, "
            f"default settings, 1 KiB events; hub on CPU {sorted(UNDER_TEST or [])} "
            "(PostgreSQL and several worker processes unpinned), "
            f"receiver and load generators on CPU {sorted(AUXILIARY or [])}; "
            f"load generator: {'wrk' if have_wrk() else 'python'}; "
            f"{'quick' if args.quick else 'full'} sizes, {runs} run(s)"
        ),
    }
    results: list[dict[str, Any]] = []
    receiver = Receiver(workdir).start()
    try:
        env = Env(workdir, receiver, args.quick)
        for name in names:
            for run in range(1, runs + 1):
                started = time.monotonic()
                try:
                    figures = scenarios[name](env)
                except Exception as exc:  # one broken scenario must not lose the others
                    traceback.print_exc()
                    figures = {"error": f"{type(exc).__name__}: {exc}"}
                seconds = round(time.monotonic() - started, 1)
                row = {"scenario": name, "run": run, "seconds": seconds, "figures": figures}
                results.append(row)
                print(json.dumps(row), flush=True)
    finally:
        receiver.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = summarise(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = {
        "meta": meta,
        "results": results,
        "summary": summary,
        "targets": targets(summary),
        "ratios": ratios(summary),
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(report, indent=1))
    text = markdown(summary, meta)
    suffix = "-brokers" if args.brokers else "-postgres" if args.db == "postgres" else ""
    (RESULTS / f"latest{suffix}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
