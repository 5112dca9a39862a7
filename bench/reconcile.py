"""A full fixing reconciliation of 100,000 objects against a rate-limited fake Stripe, in one command.

    python bench/reconcile.py [--objects 100000 | --sizes 10000,100000] [--rate 100] [--kill-at 0.5] [--keep]
                              [--profile DIR]

Per size:
1. Starts the lean fake Stripe (bench/lean_stripe.py, its own process): the objects of
   bench/stripe_dataset.py (customers, charges, refunds, subscriptions over two connected accounts, shapes
   of API version 2024-06-20), each account limited to --rate requests/s (429 + Retry-After beyond).
2. Seeds the bench database (`teachery-sync migrate`, then COPY) with the rows the handlers would hold for
   those objects, except 1% drifted in known ways (bench/reconcile_rows.py).
3. Runs `teachery-sync reconcile --json` (STRIPE_MAX_REQUESTS_PER_SECOND = --rate), sampling its peak RSS
   and timing it, and prints: objects, list pages, the floor (pages ÷ rate: the run reads the accounts one
   after the other), the wall time and its ratio to the floor, the drift expected / found / fixed / left,
   the rows of objects that did not drift which the run changed, and what the fake counted (requests per
   account, 429s, requests after the first 429, pages read more than once).
4. With --kill-at F: the same data seeded again, the run started as an RQ job (POST
   /admin/api/reconciliations to `teachery-sync web`) and run by `teachery-sync worker`, which is SIGKILLed
   when `checked` reaches F of the objects; a new worker is started and the run waited for. Prints its
   report against the uninterrupted run's (every drift item and fixed flag equal?), `resumed`, and the list
   pages read again per object type.

Its database is `teachery_sync_bench_rec` (BENCH_RECONCILE_DATABASE_URL), Redis db 14
(BENCH_RECONCILE_REDIS_URL). Run it under `flock /tmp/bench.lock` above 10,000 objects.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psutil
import psycopg
from reconcile_rows import CLI, ROOT, fresh_database, item_key, left_over, run_report, seed, snapshot, touched
from stripe_dataset import ACCOUNTS, KINDS, Dataset

from teachery_sync.embedded import free_port

DATABASE_URL = os.environ.get("BENCH_RECONCILE_DATABASE_URL",
                              "postgresql://root@127.0.0.1:5432/teachery_sync_bench_rec")
REDIS_URL = os.environ.get("BENCH_RECONCILE_REDIS_URL", "redis://127.0.0.1:6379/14")
API_KEY = "sk_test_bench_reconcile"
ADMIN_TOKEN = "bench-reconcile-admin-token"
SECRET = "whsec_bench_reconcile"
LOGS = Path("/tmp/teachery-bench-reconcile")
MIB = 2 ** 20


# --- processes --------------------------------------------------------------------------------------

class FakeStripe:
    """bench/lean_stripe.py in its own process."""

    def __init__(self, objects: int, rate: float):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "lean_stripe.py"),
                                      "--objects", str(objects), "--rate", str(rate), "--port", str(free_port())],
                                     stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise SystemExit(f"the fake Stripe did not start: {line!r}")
        self.url = line.split()[1]

    def call(self, method: str, path: str) -> dict:
        with urllib.request.urlopen(urllib.request.Request(self.url + path, method=method), timeout=30) as r:
            return json.loads(r.read())

    def reset(self) -> None:
        self.call("POST", "/_bench/reset")

    def stats(self) -> dict:
        return self.call("GET", "/_bench/stats")

    def cpu(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class PeakRss(threading.Thread):
    """The peak RSS of some processes and their children (sampled every 50 ms), the largest single one."""

    def __init__(self, *pids: int):
        super().__init__(daemon=True)
        self.pids, self.peak, self.stopped = list(pids), 0, threading.Event()

    def watch(self, pid: int) -> None:
        self.pids.append(pid)

    def run(self):
        while not self.stopped.wait(0.05):
            for pid in list(self.pids):
                with contextlib.suppress(psutil.Error):
                    root = psutil.Process(pid)
                    for proc in (root, *root.children(recursive=True)):
                        with contextlib.suppress(psutil.Error):
                            self.peak = max(self.peak, proc.memory_info().rss)

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


def service_env(fake: FakeStripe, rate: float) -> dict:
    return {**os.environ, "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "STRIPE_API_BASE": fake.url,
            "STRIPE_API_KEY": API_KEY, "STRIPE_MAX_REQUESTS_PER_SECOND": str(rate), "STRIPE_WEBHOOK_SECRET": SECRET,
            "ADMIN_TOKEN": ADMIN_TOKEN, "LOG_FORMAT": "json", "LOG_LEVEL": "warning", "ACCESS_LOG": "off"}


def kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process we started and every process under it, all at the same moment."""
    with contextlib.suppress(psutil.Error):
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


# --- one size -----------------------------------------------------------------------------------------

def prepare(dataset: Dataset) -> dict:
    started = time.perf_counter()
    fresh_database(DATABASE_URL, REDIS_URL)
    rows = seed(DATABASE_URL, dataset)
    return {"rows": rows, "before": snapshot(DATABASE_URL), "seconds": time.perf_counter() - started}


def cli_run(fake: FakeStripe, rate: float, log: Path, profile: Path | None = None) -> dict:
    """`teachery-sync reconcile --json`: its report's run id, wall time, peak RSS (with `profile`, sampled by
    py-spy, waits included, into profile/round-reconcile-<pid>.txt)."""
    with open(log, "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([CLI, "reconcile", "--json"], cwd=ROOT, env=service_env(fake, rate),
                                stdout=subprocess.PIPE, stderr=err, text=True)
        rss = PeakRss(proc.pid)
        rss.start()
        spy = spy_on(proc.pid, profile) if profile else None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, _ = proc.communicate()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run's process, reaped just now
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if spy:
            spy.wait(timeout=60)
        wall = time.perf_counter() - started
    peak = rss.stop()
    try:
        body = json.loads(out)
    except ValueError:
        raise SystemExit(f"reconcile printed no JSON (exit {proc.returncode}); its stderr: {log}") from None
    return {"id": body["id"], "exit": proc.returncode, "wall": wall, "peak": peak, "cpu": cpu}


def spy_on(pid: int, out_dir: Path) -> subprocess.Popen:
    """py-spy on one process until it exits (`pip install py-spy`), idle samples included: waits on Stripe
    and PostgreSQL show."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") or "py-spy"
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "100", "--idle", "--format", "raw",
                             "--nonblocking", "-o", str(out_dir / f"round-reconcile-{pid}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def job_run(fake: FakeStripe, rate: float, dataset: Dataset, kill_at: float, timeout: float) -> dict:
    """The run as an RQ job: POSTed to `teachery-sync web`, run by `teachery-sync worker`, whose process is
    SIGKILLed at `kill_at` of the objects checked, then a new worker."""
    env = service_env(fake, rate)
    port = free_port()
    LOGS.mkdir(exist_ok=True)
    logs = [open(LOGS / name, "w") for name in ("web.log", "worker-1.log", "worker-2.log")]  # noqa: SIM115
    web = subprocess.Popen([CLI, "web", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], cwd=ROOT,
                           env=env, stdout=logs[0], stderr=logs[0])
    worker_cmd = [CLI, "worker", "--queues", "teachery-reconciliations"]
    workers = [subprocess.Popen(worker_cmd, cwd=ROOT, env=env, stdout=logs[1], stderr=logs[1])]
    rss = PeakRss(workers[0].pid)
    rss.start()
    out = {"killed_at": None, "restarted_after": None}
    try:
        run_id = post_run(port)
        started = time.perf_counter()
        total = dataset.total
        while time.perf_counter() - started < timeout:
            status, checked = run_state(run_id)
            if out["killed_at"] is None and checked >= kill_at * total and status == "running":
                kill_tree(workers[0])
                out["killed_at"] = {"checked": checked, "seconds": time.perf_counter() - started,
                                    "reads": fake.stats()["reads"].get("page", {}), "lanes": run_lanes(run_id)}
                workers.append(subprocess.Popen(worker_cmd, cwd=ROOT, env=env, stdout=logs[2], stderr=logs[2]))
                rss.watch(workers[1].pid)
                out["restarted_after"] = time.perf_counter() - started
            if status in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        out.update(id=run_id, wall=time.perf_counter() - started, status=run_state(run_id)[0])
    finally:
        for proc in (*workers, web):
            kill_tree(proc, signal.SIGTERM)
            if proc.poll() is None:
                print(f"  {' '.join(proc.args[1:3])} (pid {proc.pid}) did not stop within 30 s of SIGTERM: killed "
                      f"(its log is in {LOGS})")
                kill_tree(proc)
        for f in logs:
            f.close()
    out["peak"] = rss.stop()
    return out


def post_run(port: int) -> str:
    deadline = time.monotonic() + 30
    while True:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/admin/api/reconciliations", data=b"{}",
                                         method="POST", headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                                                 "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())["id"]
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_lanes(run_id: str) -> dict[str, dict]:
    """The run's lane cursors as it recorded them: what it had checked, by account."""
    with psycopg.connect(DATABASE_URL) as conn:
        cursor = conn.execute("SELECT cursor FROM reconciliation_runs WHERE id = %s", (run_id,)).fetchone()[0]
    return (cursor or {}).get("lanes", {})


def checked_to_end(lanes: dict[str, dict], account: str, kind: str) -> bool:
    """Had the run checked this account's list of `kind` to its end (its lane done, or on a later kind)?"""
    lane = lanes.get(account)
    if not lane:
        return False
    return bool(lane.get("done")) or KINDS.index(lane.get("kind", KINDS[0])) > KINDS.index(kind)


def run_state(run_id: str) -> tuple[str, int]:
    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute("SELECT status, checked FROM reconciliation_runs WHERE id = %s", (run_id,)).fetchone()


# --- figures ------------------------------------------------------------------------------------------

def pages_of(dataset: Dataset) -> dict:
    pages = dataset.pages()
    per_account = {a: sum(n for (acc, _), n in pages.items() if acc == a) for a in ACCOUNTS}
    return {"listed": sum(pages.values()), "per_account": per_account, "platform": len(KINDS)}


def fake_figures(stats: dict) -> dict:
    reads = stats["reads"]
    reread = Counter({kind: 0 for kind in KINDS})
    for key, n in reads.get("page", {}).items():
        _, kind, _ = key.split("|")
        reread[kind] += max(0, n - 1)
    return {"requests": stats["requests"], "rejected": stats["rejected"] or 0,
            "after_first": sum(stats["rejected_after_first"].values()),
            "ignored_retry_after": sum(stats["ignored_retry_after"].values()),
            "page_reads": sum(reads.get("page", {}).values()), "reread": dict(reread),
            "filtered": sum(reads.get("filtered", {}).values()), "single": sum(reads.get("single", {}).values())}


def rereads(before: dict[str, int], lanes: dict[str, dict], total: dict[str, int]) -> dict[str, dict[str, int]]:
    """List pages read again after the kill, per kind: of the (account, kind) lists the killed run had checked
    to their end (by the cursor it recorded), and of those it was part-way through (including pages its
    reader had fetched ahead of the checks)."""
    out = {kind: {"finished": 0, "in_progress": 0} for kind in KINDS}
    for key, n in total.items():
        account, kind, _ = key.split("|")
        again = n - before[key] if key in before else max(0, n - 1)  # read after the kill, once more
        if again and account in ACCOUNTS:
            out[kind]["finished" if checked_to_end(lanes, account, kind) else "in_progress"] += again
    return out


def check(dataset: Dataset, prepared: dict, report: dict) -> dict:
    expected = {(obj, f) for _, obj, f in dataset.expected()}
    found = {(i["object"], i["field"]) for i in report["items"]}
    fixed = {(i["object"], i["field"]) for i in report["items"] if i.get("fixed")}
    after = snapshot(DATABASE_URL)
    left = left_over(DATABASE_URL, dataset)
    # An item the run did not report whose rows are right afterwards: the fix of an object of an earlier
    # page brought it (a refund imported with the charge it refunds), so it never differed when compared.
    still = {(obj, f) for _, obj, f in left}
    earlier = sorted(item for item in expected - found if item not in still)
    return {"expected": expected, "found": found, "fixed": fixed, "earlier": earlier,
            "missed": sorted(expected - found - set(earlier)), "unexpected": sorted(found - expected), "left": left,
            "touched": touched(prepared["before"], after, dataset, DATABASE_URL)}


def print_run(title: str, dataset: Dataset, rate: float, wall: float, peak: int, report: dict, verdict: dict,
              fake: dict) -> float:
    pages = pages_of(dataset)
    floor = pages["listed"] / rate if rate else 0.0
    parallel = max(pages["per_account"].values()) / rate if rate else 0.0
    ratio = wall / floor if floor else 0.0
    print(f"{title}: {dataset.total:,} objects ({len(verdict['expected']):,} drift items expected on "
          f"{len(dataset.drifted()):,} objects); run {report['status']}"
          + (f" ({report['error']})" if report.get("error") else ""))
    floor_text = (f"floor {floor:.2f} s = pages ÷ {rate:g}/s (the run reads the accounts one after the other; "
                  f"{parallel:.2f} s if it read both at once)" if rate else "no rate limit: no floor")
    print(f"  pages {pages['listed']:,} listed ({', '.join(f'{a}: {n}' for a, n in pages['per_account'].items())}) "
          f"+ {pages['platform']} of the platform (empty); {floor_text}")
    own = f"{report['seconds']:.2f} s" if report.get("seconds") is not None else "n/a"
    print(f"  wall {wall:.2f} s" + (f" = {ratio:.2f}x the floor (target ≤ 1.2x)" if rate else "")
          + f"; the run's own started_at → finished_at {own}; peak RSS {peak / MIB:.0f} MiB (target ≤ 200)")
    print(f"  drift: expected {len(verdict['expected']):,}, found {len(verdict['found']):,} "
          f"({len(verdict['missed'])} missed, {len(verdict['unexpected'])} unexpected), fixed {len(verdict['fixed']):,}"
          f"; not reported but fixed by an earlier fix {len(verdict['earlier']):,} (found or fixed so: "
          f"{len(verdict['found'] | set(verdict['earlier'])):,} / {len(verdict['fixed'] | set(verdict['earlier'])):,})"
          f"; left after the run {len(verdict['left']):,}; checked {report['checked']:,}; report from "
          f"{report['source']}" + (f"; resumed {report['resumed']}" if "resumed" in report else ""))
    for label, items in (("missed", verdict["missed"]), ("unexpected", verdict["unexpected"]),
                         ("fixed by an earlier fix", verdict["earlier"]), ("left", verdict["left"])):
        if items:
            print(f"    {label}, e.g. {items[:3]}")
    touched_ = verdict["touched"]
    print(f"  objects touched that did not drift (target 0): {len(touched_['rows'])} rows changed, "
          f"{len(touched_['activity'])} objects with reconciliation activity; {len(touched_['updated_at_only'])} "
          "rows with only a new updated_at" + "".join(f"; {label}, e.g. {touched_[label][:2]}" for label in
                                                     ("rows", "activity", "updated_at_only") if touched_[label]))
    asked = {a: n for a, n in fake["requests"].items() if a in ACCOUNTS}
    if rate and asked:  # the fixes' own requests (objects we never saw, their payment intents, refunds) too
        every = sum(asked.values()) / rate
        print(f"  every request the run made ÷ rate, the accounts one after the other: {every:.2f} s "
              f"(pages + what the fixes asked); wall = {wall / every:.2f}x that")
    print(f"  fake Stripe: requests {fake['requests']}; list pages read {fake['page_reads']:,}, filtered lists "
          f"{fake['filtered']}, single objects {fake['single']}; 429s {fake['rejected']}, after the first 429 "
          f"{fake['after_first']} (target 0), before a Retry-After had passed {fake['ignored_retry_after']}; "
          f"pages read more than once per kind {fake['reread'] or 0}")
    return ratio


def one_size(objects: int, rate: float, kill_at: float | None, keep: bool, timeout: float,
             profile: Path | None = None) -> dict:
    dataset = Dataset(objects)
    fake = FakeStripe(objects, rate)
    LOGS.mkdir(exist_ok=True)
    try:
        prepared = prepare(dataset)
        print(f"\n== {dataset.total:,} objects, fake Stripe {fake.url}, {rate:g} requests/s per account; seeded "
              f"{prepared['rows']} in {prepared['seconds']:.1f} s")
        fake.reset()
        cpu = fake.cpu()
        run = cli_run(fake, rate, LOGS / f"reconcile-{objects}.log", profile / str(objects) if profile else None)
        report = run_report(DATABASE_URL, run["id"])
        verdict = check(dataset, prepared, report)
        ratio = print_run("reconcile --json", dataset, rate, run["wall"], run["peak"], report, verdict,
                          fake_figures(fake.stats()))
        print(f"  the fake Stripe's own CPU during the run: {fake.cpu() - cpu:.2f} s (it must not be the bottleneck); "
              f"the run's process: {run['cpu']:.2f} s of CPU ({run['cpu'] / run['wall']:.0%} of its wall)")
        result = {"objects": dataset.total, "peak": run["peak"], "ratio": ratio, "wall": run["wall"],
                  "status": report["status"]}
        if profile:
            from ingest import print_top  # the same table as bench/ingest.py --profile (files round*.txt)

            print_top(profile / str(objects))
        if kill_at is not None:
            result["kill"] = kill_and_resume(fake, rate, dataset, kill_at, timeout, report)
        return result
    finally:
        if keep:
            print(f"  --keep: the fake Stripe stays up at {fake.url} (pid {fake.proc.pid}); database {DATABASE_URL}")
        else:
            fake.stop()


def kill_and_resume(fake: FakeStripe, rate: float, dataset: Dataset, kill_at: float, timeout: float,
                    reference: dict) -> dict:
    prepared = prepare(dataset)
    fake.reset()
    run = job_run(fake, rate, dataset, kill_at, timeout)
    report = run_report(DATABASE_URL, run["id"])
    verdict = check(dataset, prepared, report)
    raw = fake.stats()
    stats = fake_figures(raw)
    print_run(f"as an RQ job, worker SIGKILLed at {kill_at:.0%} checked", dataset, rate, run["wall"], run["peak"],
              report, verdict, stats)
    killed = run["killed_at"]
    print("  killed: " + (f"at {killed['checked']:,} checked, {killed['seconds']:.2f} s in; a new worker started"
                          if killed else "never (the run ended, or `checked` never reached the mark, first)"))
    if reference["status"] == "succeeded":
        against = "the uninterrupted run"
        ours = sorted(item_key(i) for i in report["items"])
        theirs = sorted(item_key(i) for i in reference["items"])
    else:  # nothing to compare with: the drift the data holds, every item fixed
        against = f"the expected drift, all fixed (the uninterrupted run {reference['status']})"
        ours = sorted((i["object"], i["field"], bool(i.get("fixed"))) for i in report["items"])
        theirs = sorted((obj, f, True) for _, obj, f in dataset.expected())
    same = ours == theirs
    again = rereads(killed["reads"], killed["lanes"], raw["reads"].get("page", {})) if killed else {}
    print(f"  report vs {against}: {'the same' if same else 'DIFFERENT'} "
          f"({len(ours)} against {len(theirs)} drift items, fixed flags included); status {report['status']}; "
          f"resumed {report.get('resumed', 'n/a (no such column)')}")
    print("  list pages read again after the kill, per kind (of lists the killed run had checked to the end, target "
          "≤ 1 each / of the list in progress): " + ", ".join(f"{kind} {n['finished']} / {n['in_progress']}"
                                                                for kind, n in again.items()))
    return {"same": same, "resumed": report.get("resumed"), "reread": again, "status": report["status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000, help="Stripe objects in all (default 100,000)")
    parser.add_argument("--sizes", help="several sizes one after another, e.g. 10000,100000 (instead of --objects)")
    parser.add_argument("--rate", type=float, default=100, help="requests/s per account (0: no limit)")
    parser.add_argument("--kill-at", type=float, help="also run it as an RQ job, SIGKILLing the worker at this "
                        "share of the objects checked (0.5), then a new worker")
    parser.add_argument("--keep", action="store_true", help="leave the fake Stripe up (and the database as it is)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job run")
    parser.add_argument("--profile", type=Path, help="sample the reconcile process with py-spy (pip install py-spy) "
                        "into this folder and print the functions with most samples")
    args = parser.parse_args()
    if args.kill_at is not None and not 0 < args.kill_at < 1:
        parser.error("--kill-at is a share of the objects: between 0 and 1")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.objects]
    results = [one_size(n, args.rate, args.kill_at, args.keep, args.timeout, args.profile) for n in sizes]
    print("\nRECONCILE " + "; ".join(
        f"{r['objects']:,} objects: {r['status']}, {r['wall']:.1f} s = {r['ratio']:.2f}x the floor, "
        f"peak RSS {r['peak'] / MIB:.0f} MiB"
        + (f", killed and resumed: report {'the same' if r['kill']['same'] else 'DIFFERENT'}, "
           f"{r['kill']['status']}, resumed {r['kill']['resumed']}" if "kill" in r else "")
        for r in results))
    if len(results) > 1:
        print(f"peak RSS from {results[0]['objects']:,} to {results[-1]['objects']:,} objects: "
              f"x{results[-1]['peak'] / max(1, results[0]['peak']):.2f} (target: flat, ≤ 200 MiB)")


if __name__ == "__main__":
    main()
