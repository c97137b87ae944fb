"""Benchmark large-file transfers: each figure against a baseline measured in the same run.

    .venv/bin/python benchmarks/large_files.py [--repeat N] [--client-repeat N]
                                               [--workers N] [--work DIR] [--clean]

Three figures, wall-clock throughput in MiB/s, the two sides run back to back in
alternating order, the ratio the median of the pairs' ratios:

  (1) nginx + gateway  8 concurrent `curl -o /dev/null` of the 1 GiB artifact's /d/ URL
                       through nginx in front of `gateway serve` (local storage,
                       GATEWAY_ACCEL_REDIRECT=/_objects/: the gateway decides, nginx sends)
                       vs 8 concurrent curls of the same stored file as a static file
                       from the same nginx.                            target >= 0.95
  (2) embedded server  the same 8 concurrent downloads straight from `gateway serve`
                       (granian, no nginx) vs the same nginx static file. target >= 0.8
  (3) gateway download `gateway download` of the release (the 1 GiB file and a README:
                       fetched in range parts through nginx, hashed, fsynced, renamed,
                       signature checked) vs `curl -o FILE` of the same URL followed by
                       `sha256sum FILE` (curl alone is printed too).  target >= 0.9

One gateway home serves both gateways (the same release, one manifest: the 8 curls of
a run share one download id, so they cost one quota unit in all); each `gateway
download` run starts a new download (one unit each; the tier allows 20). Generated data
lives under benchmarks/.work/large_files/ (the 1 GiB source is kept for reuse unless
--clean); every process started here is stopped by process group on the way out.
Loopback only. The exit code is 0 whether or not targets are met: this is a measurement.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from downloads import (
    BIG_NAME,
    MODEL,
    QUOTA,
    VERSION,
    Procs,
    Tools,
    artifact,
    base_env,
    ensure_source,
    free_port,
    gateway_env,
    local_object,
    mint,
    print_machine,
    setup_home,
    wait_http,
)

MIB = 1 << 20
CONCURRENT = 8
DEFAULT_WORK = Path(__file__).resolve().parent / ".work" / "large_files"
TARGETS = {"1": 0.95, "2": 0.8, "3": 0.9}
LABELS = {
    "1": "(1) 8 x 1 GiB: nginx + gateway (accel) / nginx static",
    "2": "(2) 8 x 1 GiB: embedded server / nginx static",
    "3": "(3) gateway download / curl -o f && sha256sum f",
    "3c": "    gateway download / curl -o f (no hash)",
    "3p": "    gateway download --parts 1 / curl && sha256sum",
}


@dataclass
class Figure:
    key: str
    measured: list[float]  # seconds per run
    baseline: list[float]
    nbytes: int

    def rate(self, runs: list[float]) -> float:
        return self.nbytes / statistics.median(runs) / MIB

    @property
    def ratio(self) -> float:
        """Median over back-to-back pairs of baseline time / measured time (a speed ratio)."""
        return statistics.median(b / m for b, m in zip(self.baseline, self.measured, strict=True))


@dataclass(frozen=True)
class Config:
    repeat: int
    client_repeat: int
    workers: int
    work: Path
    clean: bool


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="pairs for (1) and (2) (5)")
    parser.add_argument("--client-repeat", type=int, default=3, help="pairs for (3) (3)")
    parser.add_argument("--workers", type=int, default=1, help="granian workers (1)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"({DEFAULT_WORK})")
    parser.add_argument("--clean", action="store_true", help="also remove the generated source")
    args = parser.parse_args(argv)
    if min(args.repeat, args.client_repeat, args.workers) < 1:
        parser.error("--repeat, --client-repeat and --workers must be positive")
    if 2 * args.client_repeat + 2 > QUOTA:
        parser.error(f"--client-repeat would use more than the tier's quota of {QUOTA}")
    return Config(args.repeat, args.client_repeat, args.workers, args.work.absolute(), args.clean)


def find_tools() -> Tools:
    gateway = Path(sys.executable).with_name("gateway")
    found = {
        n: shutil.which(n) or shutil.which(n, path="/usr/sbin:/sbin") for n in ("nginx", "curl")
    }
    missing = [n for n, p in found.items() if p is None] + (
        [] if gateway.is_file() else ["gateway"]
    )
    if missing or not shutil.which("sha256sum"):
        sys.exit(f"missing: {', '.join(missing) or 'sha256sum'} (apt-get install nginx curl)")
    # print_machine reports a wrk version too; wrk itself is not used here.
    wrk = shutil.which("wrk") or "true"
    return Tools(gateway, Path(), wrk, found["nginx"] or "", found["curl"] or "")


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tools = find_tools()
    cfg.work.mkdir(parents=True, exist_ok=True)
    source = ensure_source(cfg.work)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=cfg.work))
    procs = Procs()
    figures: list[Figure] = []
    try:
        print_machine(tools)
        figures = run_all(cfg, tools, source, run_dir, procs)
    finally:
        procs.stop_all()
        shutil.rmtree(run_dir, ignore_errors=True)
        if cfg.clean:
            shutil.rmtree(cfg.work, ignore_errors=True)
    report(cfg, figures)
    return 0


def run_all(cfg: Config, tools: Tools, source: Path, run_dir: Path, procs: Procs) -> list[Figure]:
    nginx_port, accel_port, direct_port = free_port(), free_port(), free_port()
    edge = f"http://127.0.0.1:{nginx_port}"
    env = gateway_env(run_dir / "home")
    # Both gateways sign and check tokens for the public URL, nginx's; either answers
    # the same /d/ URL.
    env |= {"GATEWAY_PUBLIC_URL": edge, "GATEWAY_SCHEDULER": "off"}
    print("\n== setup: gateway home (publishing 1 GiB) ...", flush=True)
    key = setup_home(tools, env, source / "big", source / "LICENSE")
    stored = local_object(run_dir / "home", source)
    accel_env = env | {
        "GATEWAY_ACCEL_REDIRECT": "/_objects/",
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
    }
    groups = {
        "gateway behind nginx": start_gateway(
            tools, procs, accel_env, accel_port, cfg.workers, run_dir / "accel.log"
        ),
        "embedded server": start_gateway(
            tools, procs, env, direct_port, cfg.workers, run_dir / "direct.log"
        ),
        "nginx": start_nginx(tools, procs, run_dir / "nginx", nginx_port, accel_port, stored),
    }
    big = artifact(mint(edge, key), BIG_NAME)
    size = int(big["size"])
    through_nginx = big["url"]
    straight = through_nginx.replace(edge, f"http://127.0.0.1:{direct_port}", 1)
    static = f"{edge}/static/{BIG_NAME}"
    for url in (through_nginx, straight, static):  # untimed: the quota unit, a warm cache
        concurrent_curls(url, size, 1)
    figures = []
    for figure_key, url in (("1", through_nginx), ("2", straight)):
        before = group_cpu(groups)
        figures.append(
            paired(
                figure_key,
                cfg.repeat,
                CONCURRENT * size,
                lambda url=url: concurrent_curls(url, size, CONCURRENT),
                lambda: concurrent_curls(static, size, CONCURRENT),
            )
        )
        # Both sides of every pair: nginx's share covers the baseline runs as well.
        print(f"      CPU used in all its runs: {cpu_note(before, group_cpu(groups))}")
    figures += measure_client(cfg, tools, edge, key, through_nginx, size, run_dir)
    return figures


def start_gateway(
    tools: Tools, procs: Procs, env: dict[str, str], port: int, workers: int, log: Path
) -> int:
    """Start `gateway serve`; returns its process group (the granian workers' too)."""
    cmd = [str(tools.gateway), "serve", "--port", str(port), "--workers", str(workers)]
    proc = procs.start("gateway", cmd, env, log)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    return int(proc.pid)


def group_cpu(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process group's live members."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(groups, 0.0)
    by_group = {pgid: name for name, pgid in groups.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        name = by_group.get(int(fields[2]))  # fields after "pid (comm)": state, ppid, pgrp...
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def cpu_note(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{name} {after[name] - before[name]:.1f} s" for name in before)


def start_nginx(
    tools: Tools, procs: Procs, prefix: Path, port: int, upstream: int, stored: Path
) -> int:
    """nginx with the gateway's locations (infra/nginx/gateway-locations.conf) and, as
    the baseline, the stored object under /static/. Same process, same settings."""
    (prefix / "logs").mkdir(parents=True)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}daemon off;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream gateway {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        location / {{ proxy_pass http://gateway; }}
        location /d/ {{
            proxy_pass http://gateway;
            proxy_buffering off;
            proxy_max_temp_file_size 0;
        }}
        location /_objects/ {{
            internal;
            alias {stored.parent.parent.parent}/;
            sendfile on;
            tcp_nopush on;
            default_type application/octet-stream;
        }}
        location = /static/{BIG_NAME} {{
            alias {stored};
            sendfile on;
            tcp_nopush on;
            default_type application/octet-stream;
        }}
    }}
}}
""",
        encoding="utf-8",
    )
    log = prefix / "logs" / "stdout.log"
    proc = procs.start("nginx", [tools.nginx, "-c", str(conf), "-p", str(prefix)], base_env(), log)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, prefix / "logs" / "error.log")
    return int(proc.pid)


def concurrent_curls(url: str, size: int, count: int) -> float:
    """Wall-clock seconds for `count` simultaneous `curl -o /dev/null URL`, all checked."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url]
    start = time.perf_counter()
    env = base_env()
    running = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(count)
    ]
    outputs = [p.communicate()[0] for p in running]
    took = time.perf_counter() - start
    for out in outputs:
        if out.split() != ["200", str(size)]:
            raise RuntimeError(f"curl {url}: {out!r}, expected 200 and {size} bytes")
    return took


def paired(
    key: str,
    repeat: int,
    nbytes: int,
    measured: Callable[[], float],
    baseline: Callable[[], float],
) -> Figure:
    figure = Figure(key, [], [], nbytes)
    for i in range(repeat):
        sides = [(figure.baseline, baseline), (figure.measured, measured)]
        for runs, run in sides if i % 2 == 0 else reversed(sides):
            runs.append(run())
    show(figure)
    return figure


def show(figure: Figure) -> None:
    print(
        f"   {LABELS[figure.key]}\n"
        f"      measured {figure.rate(figure.measured):7.0f} MiB/s"
        f" (runs {fmt(figure.measured)} s)\n"
        f"      baseline {figure.rate(figure.baseline):7.0f} MiB/s"
        f" (runs {fmt(figure.baseline)} s)\n"
        f"      ratio    {figure.ratio:.3f}",
        flush=True,
    )


def fmt(runs: list[float]) -> str:
    return " ".join(f"{r:.2f}" for r in runs)


def measure_client(
    cfg: Config, tools: Tools, edge: str, key: str, url: str, size: int, run_dir: Path
) -> list[Figure]:
    """`gateway download` (4 parts, then 1) against curl, curl + sha256sum, in turn."""
    curl_s: list[float] = []
    hashed_s: list[float] = []
    client_s: list[float] = []
    single_s: list[float] = []

    def curl_side(folder: Path) -> None:
        target = folder / BIG_NAME
        start = time.perf_counter()
        done = subprocess.run(
            ["curl", "-s", "-o", str(target), "-w", "%{http_code}", url],
            capture_output=True,
            text=True,
            check=True,
            env=base_env(),
        )
        curl_s.append(time.perf_counter() - start)
        digest = subprocess.run(
            ["sha256sum", str(target)], capture_output=True, text=True, check=True
        )
        hashed_s.append(time.perf_counter() - start)
        if done.stdout != "200" or target.stat().st_size != size or not digest.stdout:
            raise RuntimeError(f"curl -o: {done.stdout!r}, {target.stat().st_size} bytes")

    def client_side(folder: Path, parts: int, runs: list[float]) -> None:
        cmd = [
            str(tools.gateway),
            "download",
            f"{MODEL}:{VERSION}",
            "--to",
            str(folder / "out"),
            "--key",
            key,
            "--server",
            edge,
            "--quiet",
            "--parts",
            str(parts),
        ]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=base_env())
        runs.append(time.perf_counter() - start)
        got = folder / "out" / BIG_NAME
        if done.returncode != 0 or got.stat().st_size != size:
            raise RuntimeError(f"gateway download failed: {done.stderr}{done.stdout}")

    sides: list[tuple[str, Callable[[Path], None]]] = [
        ("curl", curl_side),
        ("client", lambda f: client_side(f, 4, client_s)),
        ("single", lambda f: client_side(f, 1, single_s)),
    ]
    for i in range(cfg.client_repeat):
        for name, side in sides if i % 2 == 0 else reversed(sides):
            # A fresh parent each run: the client keeps DIR.sig and DIR.download.json
            # beside DIR, and would skip a file already there.
            folder = run_dir / f"client-{i}-{name}"
            folder.mkdir()
            try:
                subprocess.run(["sync"], check=True)  # nothing of the last run left to write
                side(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    figures = [
        Figure("3", client_s, hashed_s, size),
        Figure("3c", client_s, curl_s, size),
        Figure("3p", single_s, hashed_s, size),
    ]
    for figure in figures:
        show(figure)
    return figures


def report(cfg: Config, figures: list[Figure]) -> None:
    print(
        f"\nLarge files (gateway serve --workers {cfg.workers}; pairs: (1)(2) {cfg.repeat}, "
        f"(3) {cfg.client_repeat}; MiB/s = 2^20 bytes per wall-clock second)"
    )
    header = f"  {'figure':<54} {'measured':>9} {'baseline':>9} {'ratio':>6}  target  result"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for f in figures:
        target = TARGETS.get(f.key)
        verdict = "" if target is None else ("PASS" if f.ratio >= target else "MISS")
        wanted = f">= {target:.2f}" if target is not None else ""
        print(
            f"  {LABELS[f.key]:<54} {f.rate(f.measured):9.0f} {f.rate(f.baseline):9.0f} "
            f"{f.ratio:6.3f}  {wanted:<7} {verdict}"
        )
    print("  ratio: median over back-to-back pairs of baseline seconds / measured seconds")


if __name__ == "__main__":
    sys.exit(main())
