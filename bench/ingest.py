"""Ingest against the floor, in one run, alternating rounds.

    python bench/ingest.py [--rounds 3] [--events 16000] [--seconds 6] [--connections 16]

Starts `teachery-sync web --workers 2` and the floor (bench/floor/limit_receiver.py under gunicorn,
2 processes x 8 threads) on the same PostgreSQL and Redis, then alternates rounds of wrk (one thread, 16
connections) against each: every round posts its own distinct, correctly signed ~3 KB events (the
script cycles through --events of them; more than a round sends). Prints per round and in all: events/s,
p50/p99, non-2xx; checks every event the service answered is in the ledger exactly once; prints the
peak RSS of the service's gunicorn workers; and the ratio service/floor (median of the rounds' ratios).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import psycopg
import redis
from common import DATABASE_URL, REDIS_URL, ROOT, SECRET, fresh_stores

from teachery_sync.embedded import free_port

FLOOR = Path(__file__).resolve().parent / "floor"  # the reference floor receiver and wrk script generator
sys.path.insert(0, str(FLOOR))
from make_wrk_script import write_script  # noqa: E402


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


class PeakRss(threading.Thread):
    """Samples the RSS of a process's children (gunicorn's workers) and keeps the peak of each."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.parent = psutil.Process(pid)
        self.peak = 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.1):
            try:
                for child in self.parent.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        self.peak = max(self.peak, child.memory_info().rss)
            except psutil.Error:
                return


def wrk(url: str, script: str, seconds: int, connections: int) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    tail = dict(kv.split("=") for kv in re.search(r"non200=.*", out).group(0).split())
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else "",
            "p50": float(tail["p50_ms"]), "p99": float(tail["p99_ms"])}


def cpu_seconds(master: int) -> dict[str, float]:
    """CPU time so far of the server's processes, of every PostgreSQL process and of Redis (machine-wide)."""
    def total(procs):
        seconds = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                seconds += times.user + times.system
            except psutil.Error:
                pass
        return seconds
    server = psutil.Process(master)
    others = list(psutil.process_iter(["name"]))
    return {"server": total([server, *server.children(recursive=True)]),
            "postgres": total(p for p in others if (p.info["name"] or "").startswith("postgres")),
            "redis": total(p for p in others if (p.info["name"] or "").startswith("redis-server"))}


def profile(master: int, out_dir: str, round_: int, seconds: int) -> list[subprocess.Popen]:
    """py-spy on each gunicorn worker for the round (py-spy must be installed: pip install py-spy==0.4.1)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    workers = [child.pid for child in psutil.Process(master).children()]
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") or "py-spy"
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--gil",
                              "--format", "raw", "--nonblocking", "-o", f"{out_dir}/round{round_ + 1}-{pid}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in workers]


def print_top(out_dir: Path, top: int = 25) -> None:
    """The functions with the most samples, inclusive (anywhere on the stack) and exclusive (on top)."""
    inclusive, exclusive, total = {}, {}, 0
    for path in out_dir.glob("round*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                      for f in stack.split(";")]
            total += int(count)
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + int(count)
            exclusive[frames[-1]] = exclusive.get(frames[-1], 0) + int(count)
    for title, table in (("inclusive", inclusive), ("exclusive", exclusive)):
        print(f"profile ({title}, {total} samples):")
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {100 * count / total:5.1f}%  {frame}")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (alternating)")
    parser.add_argument("--events", type=int, default=30000, help="distinct events per round's script")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="the service's gunicorn processes")
    parser.add_argument("--profile", metavar="DIR", help="py-spy each service round's gunicorn workers into DIR "
                        "(collapsed stacks, for flamegraph.pl or speedscope) and print the top functions")
    parser.add_argument("--database", metavar="URL", help="a database to post into as it is (migrated, never "
                        "emptied): e.g. bench/ledger_scale.py's 10-million-event ledger")
    return parser.parse_args()


def prepare_stores(database: str | None) -> str:
    """The database to post into: --database's as it is (migrated), else the bench's, emptied; Redis flushed."""
    if not database:
        fresh_stores()
        return DATABASE_URL
    from domain.migrate import migrate

    migrate(database)
    redis.Redis.from_url(REDIS_URL).flushdb()
    return database


def start_servers(env: dict, workers: int, service_port: int, floor_port: int) -> tuple[subprocess.Popen, ...]:
    """`teachery-sync web` and the floor under gunicorn (2 processes x 8 threads), each in its own group."""
    bin_dir = Path(sys.executable).parent
    devnull = subprocess.DEVNULL
    service = subprocess.Popen([str(bin_dir / "teachery-sync"), "web", "--workers", str(workers),
                                "--port", str(service_port)], cwd=ROOT, env=env, stdout=devnull, stderr=devnull,
                               start_new_session=True)
    floor = subprocess.Popen([str(bin_dir / "gunicorn"), "-w", "2", "--threads", "8", "-b", f"127.0.0.1:{floor_port}",
                              "--chdir", str(FLOOR), "limit_receiver:app"], env=env, stdout=devnull, stderr=devnull,
                             start_new_session=True)
    return service, floor


def one_round(args, database_url: str, tmp: Path, name: str, port: int, n: int, server_pid: int,
              service_pid: int) -> dict:
    """Round n against one server (`service` or `floor`): wrk with a fresh script; its figures, the CPU per
    event and what was stored, printed and returned."""
    tag = f"_{name[0]}{n}"
    script = tmp / f"{name}{n}.lua"
    write_script(args.events, str(script), "/webhooks/stripe", SECRET, tag)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        # each round starts without the last one's dirty pages
        round_start = conn.execute("SELECT now()").fetchone()[0]
    profiled = args.profile and name == "service"
    spies = profile(service_pid, args.profile, n, args.seconds) if profiled else []
    before = cpu_seconds(server_pid)
    res = wrk(f"http://127.0.0.1:{port}", str(script), args.seconds, args.connections)
    after = cpu_seconds(server_pid)
    res["cpu"] = {k: 1e6 * (after[k] - before[k]) / max(res["requests"], 1) for k in after}
    for spy in spies:
        spy.wait(timeout=30)
    sent = min(res["requests"], args.events)  # distinct ids posted (the script cycles)
    with psycopg.connect(database_url, autocommit=True) as conn:
        table = "events" if name == "service" else "limit_events"
        stored = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {table} "
                              "WHERE received_at >= %s AND id LIKE %s",
                              (round_start, f"%{tag}",)).fetchone()
    res.update(sent=sent, stored=stored[0], distinct=stored[1])
    print(f"round {n + 1} {name:7s}: {res['rps']:7.0f} events/s  p50 {res['p50']:6.2f} ms  "
          f"p99 {res['p99']:6.2f} ms  non-2xx {res['non2xx']}  requests {res['requests']}  "
          f"stored {stored[0]} (distinct {stored[1]}, sent {sent})"
          + f"  CPU µs/event: server {res['cpu']['server']:.0f}, postgres {res['cpu']['postgres']:.0f}, "
            f"redis {res['cpu']['redis']:.0f}"
          + (f"  socket errors: {res['socket_errors']}" if res["socket_errors"] else ""), flush=True)
    return res


def print_summary(args, results: dict[str, list[dict]], peak_rss: int) -> None:
    """Medians of each side, the profile's top functions, and the ratio service/floor."""
    ratios = [s["rps"] / f["rps"] for s, f in zip(results["service"], results["floor"], strict=True)]
    p99s = [s["p99"] / f["p99"] for s, f in zip(results["service"], results["floor"], strict=True)]
    svc, flo = results["service"], results["floor"]
    # wrk counts the answers it read; up to one request per connection was still in flight when it stopped
    once = all(s["stored"] == s["distinct"]
               and s["sent"] <= s["stored"] <= min(s["requests"] + args.connections, args.events) for s in svc)
    print(f"service: median {statistics.median(s['rps'] for s in svc):.0f} events/s, "
          f"p50 {statistics.median(s['p50'] for s in svc):.2f} ms, "
          f"p99 {statistics.median(s['p99'] for s in svc):.2f} ms, "
          f"non-2xx {sum(s['non2xx'] for s in svc)}")
    print(f"floor:   median {statistics.median(f['rps'] for f in flo):.0f} events/s, "
          f"p50 {statistics.median(f['p50'] for f in flo):.2f} ms, "
          f"p99 {statistics.median(f['p99'] for f in flo):.2f} ms, "
          f"non-2xx {sum(f['non2xx'] for f in flo)}")
    if args.profile:
        print_top(Path(args.profile))
    print(f"INGEST ratio service/floor: {statistics.median(ratios):.2f}x (rounds: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}); p99 ratio {statistics.median(p99s):.2f}x; "
          f"every event stored once: {'yes' if once else 'NO'}; "
          f"peak RSS of a gunicorn worker: {peak_rss / 2**20:.0f} MiB")


def main() -> None:
    args = arguments()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    database_url = prepare_stores(args.database)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "STRIPE_WEBHOOK_SECRET": SECRET,
           "BENCH_DSN": database_url, "BENCH_REDIS": REDIS_URL, "LOG_FORMAT": "json"}
    service_port, floor_port = free_port(), free_port()
    service, floor = start_servers(env, args.workers, service_port, floor_port)
    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    results = {"service": [], "floor": []}
    rss = PeakRss(service.pid)
    try:
        wait_listening(service_port, service)
        wait_listening(floor_port, floor)
        rss.start()
        r = redis.Redis.from_url(REDIS_URL)
        for n in range(args.rounds):
            for name, port in (("service", service_port), ("floor", floor_port)) if n % 2 == 0 else \
                    (("floor", floor_port), ("service", service_port)):
                server_pid = service.pid if name == "service" else floor.pid
                results[name].append(one_round(args, database_url, tmp, name, port, n, server_pid, service.pid))
            r.flushdb()  # the jobs queued meanwhile (no worker runs): keep Redis small between rounds
    finally:
        rss.stopped.set()
        for proc in (service, floor):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (service, floor):
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    print_summary(args, results, rss.peak)


if __name__ == "__main__":
    main()
