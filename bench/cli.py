"""`python -m bench`: the run from start to stop (its options are bench/options.py's,
the machine facts it reports bench/facts.py's)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import procs
from bench.facts import facts, load_average
from bench.options import parse_args
from bench.report import (
    RemoteResults,
    Row,
    all_met,
    remote_rss_checks,
    render,
    render_profiles,
    rss_checks,
    write_json,
)
from bench.runner import Runner
from bench.workers import wanted as workers_wanted
from bench.workloads import LOCAL_WORKLOADS, REMOTE, REPORTED, ReportedSection
from gateway.config import load
from gateway.server import channel_options


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl-C, through the finally below


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tuned = os.environ.get("BENCH_DRIVER_MALLOC", "tuned") == "tuned" and procs.tune_own_malloc()
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="storagegw-bench-", dir=args.data_dir)
    processes = procs.Processes()
    runner: Runner | None = None
    try:
        # The gateway's server options, which the bench's clients use too, plus
        # the bundled client's retry of refused streams (storagegw._common) for
        # every method of every server: near the per-connection stream limit a
        # gRPC server refuses some new streams under load, and a refused call
        # would end a cell.
        options: list[tuple[str, Any]] = [
            *channel_options(load({})),
            ("grpc.service_config", procs.retry_everywhere()),
        ]
        header = facts(args, data_dir)
        notes: list[str] = []
        rows: list[Row] = []
        remote: list[RemoteResults] = []
        failed: list[str] = []
        summaries: dict[str, Any] = {}
        if set(args.only) & set(LOCAL_WORKLOADS):
            runner = Runner(args, processes, Path(data_dir), options)
            print("starting servers...", flush=True)
            runner.start_servers()
            notes += runner.setup_notes()
            header["peak RSS method"] = runner.rss_method
            pids = ", ".join(f"{name} pid {server.pid}" for name, server in runner.servers.items())
            print(f"servers up: {pids}", flush=True)
            runner.run_all()
            rows = runner.rows
            summaries.update(runner.profile_summaries())
            runner.close()
            for server in runner.servers.values():  # idle from here on: free their memory
                processes.stop(server.process)
        notes.append(
            "driver malloc: "
            + (
                "tuned (mallopt: keeps freed 1 MiB buffers; BENCH_DRIVER_MALLOC=default to "
                "turn off); servers run with glibc defaults unless --server-env says otherwise"
                if tuned
                else "glibc defaults"
            )
        )
        for workload, kind in REMOTE.items():
            if workload not in args.only:
                remote.append(RemoteResults(kind.kind, kind.title, []))
                continue
            section = kind(args, processes, Path(data_dir), options)
            section.run()
            header.update(section.facts)
            notes += section.notes
            remote.append(section.results())
            failed += section.failed
            summaries.update(section.profile_summaries())
        reported: list[ReportedSection] = []  # each with a table and a JSON file of its own
        for name, section_class in REPORTED.items():
            if name in args.only or (name == "workers" and workers_wanted(args)):
                reported.append(section_class(args, processes, Path(data_dir), options))
                reported[-1].run()
                notes += reported[-1].notes
                failed += reported[-1].failed
        header["load average at end"] = load_average()
        checks = rss_checks({row.workload: row for row in rows}, args.size)
        for results in remote:
            checks += remote_rss_checks(results.rows, args.size)
        print()
        print(render(header, rows, checks, notes, remote))
        if summaries:
            print()
            print(render_profiles(summaries))
        for section in reported:
            print()
            print(section.render())
            section_json = args.output.with_name(f"{args.output.stem}-{section.name}.json")
            section_json.write_text(json.dumps(section.as_json(), indent=2) + "\n")
        write_json(args.output, header, rows, checks, notes, summaries, remote)
        print(f"\nresults written to {args.output}")
        met = all_met(rows, checks, remote) and all(section.all_met() for section in reported)
        return 1 if args.check and (failed or not met) else 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers", file=sys.stderr)
        return 130
    finally:
        if runner is not None:
            runner.close()
        processes.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)
