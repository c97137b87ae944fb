"""Benchmark `gateway release publish` against `sha256sum` + `cp` of the same files.

The baseline is what an operator would do by hand to store a model folder with its
digests: `sha256sum` every file, then `cp` every file into a folder on the same
filesystem. Publishing does the same work (hash and store every byte) plus signing and a
database transaction, so the target is a publish that takes at most as long as the
baseline: a ratio publish/baseline of at most 1.0x, both measured in the same run.

    .venv/bin/python benchmarks/publish.py [--size-gb 2] [--files 8] [--repeat 3]
                                           [--work DIR] [--clean]

Fairness rules:
- both sides read the same files; every timed run starts right after a `sync` (so the
  previous run's clean-up and this run's set-up are on disk) and a read of every file
  (so the source is in the page cache), with nothing else in between;
- both sides end with `sync` inside the timed region: the gateway fsyncs every object it
  stores, so the baseline must also pay for getting its copies onto the disk, or write-back
  caching would favour it;
- the order baseline/publish alternates across repeats, and the median is reported;
- migrating the database and generating the signing key happen before the timed region
  (once per fresh GATEWAY_HOME), since a real gateway does them once, not per publish;
- the 1-minute load average is printed, with a warning when other work was running: on 2
  cores it slows publish (two hashing workers, a CPU-bound start-up) more than the
  single-threaded baseline.

The exit code is 0 whether or not the target is met: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1_000_000
# One block of random bytes is generated and repeated: fast, and incompressible enough.
BLOCK_SIZE = 64 * MIB
READ_CHUNK = 8 * MIB
TARGET_RATIO = 1.0
# A 1-minute load average above this, with the benchmark itself adding about 1-2, means
# something else was running.
BUSY_LOAD = 3.0
MODEL_REF = "bench/model"
VERSION = "1.0.0"
DEFAULT_WORK = Path(__file__).resolve().parent / ".work"
LICENSE_TEXT = "Benchmark license: these bytes are random and licensed to no one.\n"


@dataclass(frozen=True)
class Dataset:
    folder: Path
    license_file: Path
    files: list[Path]
    total_bytes: int


@dataclass(frozen=True)
class BaselineRun:
    sha256sum: float
    cp_sync: float

    @property
    def total(self) -> float:
        return self.sha256sum + self.cp_sync


@dataclass(frozen=True)
class PublishRun:
    total: float
    startup: float  # `gateway release list` on the same home, for reference


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    gateway = find_gateway()
    data = ensure_dataset(work, size_bytes=int(args.size_gb * GIB), count=args.files)
    load_before = os.getloadavg()[0]
    runs_dir = work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir()
    baselines: list[BaselineRun] = []
    publishes: list[PublishRun] = []
    try:
        for i in range(args.repeat):
            order = ("baseline", "publish") if i % 2 == 0 else ("publish", "baseline")
            for side in order:
                if side == "baseline":
                    baselines.append(measure_baseline(data, runs_dir / f"{i}-baseline"))
                    print(f"run {i + 1}/{args.repeat} baseline: {baselines[-1].total:.2f} s")
                else:
                    publishes.append(measure_publish(gateway, data, runs_dir / f"{i}-publish"))
                    print(f"run {i + 1}/{args.repeat} publish:  {publishes[-1].total:.2f} s")
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
        if args.clean:
            remove_dataset(work, data)
    report(data, baselines, publishes, load_before=load_before)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="model size in GiB (2)")
    parser.add_argument("--files", type=int, default=8, help="number of weight files (8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (3)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"({DEFAULT_WORK})")
    parser.add_argument(
        "--clean", action="store_true", help="also remove the generated model folder"
    )
    args = parser.parse_args(argv)
    if args.size_gb <= 0 or args.files <= 0 or args.repeat <= 0:
        parser.error("--size-gb, --files and --repeat must be positive")
    return args


def find_gateway() -> Path:
    """The `gateway` script of the interpreter running this benchmark (the repo's venv)."""
    beside = Path(sys.executable).with_name("gateway")
    if beside.is_file():
        return beside
    found = shutil.which("gateway")
    if found is None:
        sys.exit("cannot find the `gateway` command; run this with .venv/bin/python")
    return Path(found)


# --- the model folder -------------------------------------------------------------------


def ensure_dataset(work: Path, *, size_bytes: int, count: int) -> Dataset:
    """The model folder and license under work/, generated unless already the right size."""
    folder = work / "model"
    per_file = size_bytes // count
    names = [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
    files = [folder / name for name in names]
    license_file = work / "LICENSE"
    data = Dataset(folder, license_file, files, total_bytes=per_file * count)
    if _dataset_matches(data, names, per_file):
        print(f"reusing {folder} ({count} x {per_file / MIB:.0f} MiB)")
        return data
    print(f"generating {folder} ({count} x {per_file / MIB:.0f} MiB) ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    block = memoryview(os.urandom(BLOCK_SIZE))
    for i, path in enumerate(files):
        _write_file(
            path, per_file, prefix=f"benchmark file {i + 1} of {count}\n".encode(), block=block
        )
    license_file.write_text(LICENSE_TEXT, encoding="utf-8")
    return data


def _dataset_matches(data: Dataset, names: list[str], per_file: int) -> bool:
    if not data.folder.is_dir() or not data.license_file.is_file():
        return False
    if sorted(p.name for p in data.folder.iterdir()) != sorted(names):
        return False
    return all(f.stat().st_size == per_file for f in data.files)


def _write_file(path: Path, size: int, *, prefix: bytes, block: memoryview) -> None:
    # The per-file prefix gives every file a different SHA-256; identical files would be
    # stored once by the content-addressed store, which would flatter the gateway.
    with path.open("wb") as out:
        written = out.write(prefix[:size])
        while written < size:
            written += out.write(block[: size - written])
        out.flush()
        os.fsync(out.fileno())


def remove_dataset(work: Path, data: Dataset) -> None:
    shutil.rmtree(data.folder, ignore_errors=True)
    data.license_file.unlink(missing_ok=True)
    # Other benchmarks share the work folder: remove it only if nothing else is left.
    with contextlib.suppress(OSError):
        work.rmdir()


def settle_and_warm(data: Dataset) -> None:
    """Run just before the clock starts, after all untimed set-up, for both sides alike.

    `sync` first, so no write-back of the set-up (or of the previous run's clean-up) is
    left to land inside the timed region; then read every file once, so each timed run
    starts with the whole source in the page cache.
    """
    subprocess.run(["sync"], check=True)
    buffer = bytearray(READ_CHUNK)
    for path in [*data.files, data.license_file]:
        with path.open("rb", buffering=0) as source:
            while source.readinto(buffer):
                pass


# --- the two sides ----------------------------------------------------------------------


def measure_baseline(data: Dataset, run_dir: Path) -> BaselineRun:
    """`sha256sum` every file, then `cp` every file into a fresh folder, then `sync`."""
    dest = run_dir / "dest"
    dest.mkdir(parents=True)
    files = [str(f) for f in data.files]
    try:
        settle_and_warm(data)
        start = time.perf_counter()
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
        hashed = time.perf_counter()
        subprocess.run(["cp", *files, str(dest)], check=True)
        subprocess.run(["sync"], check=True)
        done = time.perf_counter()
        copied = sum(p.stat().st_size for p in dest.iterdir())
        if copied != data.total_bytes:
            sys.exit(f"baseline: copied {copied} bytes, expected {data.total_bytes}")
    finally:
        remove_and_settle(run_dir)
    return BaselineRun(sha256sum=hashed - start, cp_sync=done - hashed)


def measure_publish(gateway: Path, data: Dataset, run_dir: Path) -> PublishRun:
    """`gateway release publish` into a fresh GATEWAY_HOME, then `sync`."""
    home = run_dir / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_HOME"] = str(home)
    try:
        # Untimed: migrate the database; `release list` builds the runtime, which
        # generates the signing key, and doubles as a measure of the CLI's start-up.
        _gateway(gateway, env, "db", "upgrade")
        start = time.perf_counter()
        _gateway(gateway, env, "release", "list")
        startup = time.perf_counter() - start
        command = ["release", "publish", MODEL_REF, VERSION, str(data.folder)]
        settle_and_warm(data)
        start = time.perf_counter()
        _gateway(gateway, env, *command, "--license", str(data.license_file))
        subprocess.run(["sync"], check=True)
        total = time.perf_counter() - start
        stored = sum(
            p.stat().st_size for p in (home / "objects" / "objects").rglob("*") if p.is_file()
        )
        if stored != data.total_bytes:
            sys.exit(f"publish: stored {stored} bytes, expected {data.total_bytes}")
    finally:
        remove_and_settle(run_dir)
    return PublishRun(total=total, startup=startup)


def remove_and_settle(run_dir: Path) -> None:
    """Remove a run's output and commit the removal (freeing blocks, discards) untimed."""
    shutil.rmtree(run_dir, ignore_errors=True)
    subprocess.run(["sync"], check=True)


def _gateway(gateway: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(gateway), *args], check=False, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"gateway {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")


# --- the report -------------------------------------------------------------------------


def report(
    data: Dataset,
    baselines: list[BaselineRun],
    publishes: list[PublishRun],
    *,
    load_before: float,
) -> None:
    size = data.total_bytes
    base = statistics.median(b.total for b in baselines)
    sha = statistics.median(b.sha256sum for b in baselines)
    cp = statistics.median(b.cp_sync for b in baselines)
    pub = statistics.median(p.total for p in publishes)
    startup = statistics.median(p.startup for p in publishes)
    ratio = pub / base

    def row(label: str, seconds: float, runs: list[float] | None = None) -> str:
        spread = f"{min(runs):6.2f} - {max(runs):6.2f}" if runs else " " * 15
        rate = f"{size / seconds / MB:8.0f}" if seconds > 0 else " " * 8
        return f"  {label:<34} {seconds:8.2f}  {spread}  {rate}"

    print()
    print(f"Publishing: {len(data.files)} files, {size / GIB:.2f} GiB ({size} bytes),")
    print(f"median of {len(baselines)} runs per side, on {os.cpu_count()} CPUs")
    print("Both sides end with `sync` inside the timed region (the gateway fsyncs what it")
    print("stores, so the baseline pays for flushing its copies too). Every timed run starts")
    print("right after an untimed `sync` and a read of every file (warm page cache), and the")
    print("baseline/publish order alternates across runs.")
    print()
    print(f"  {'':<34} {'seconds':>8}  {'min - max':>15}  {'MB/s':>8}")
    print(row("baseline: sha256sum + cp + sync", base, [b.total for b in baselines]))
    print(row("  of which sha256sum", sha, [b.sha256sum for b in baselines]))
    print(row("  of which cp + sync", cp, [b.cp_sync for b in baselines]))
    print(row("gateway release publish + sync", pub, [p.total for p in publishes]))
    print(f"  {'  of which CLI start-up (approx.)':<34} {startup:8.2f}")
    print()
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(f"  ratio publish/baseline: {ratio:.2f}x (target: at most {TARGET_RATIO:.1f}x) {verdict}")
    # Each repeat measures both sides back to back, so its own ratio sees the same disk.
    pairs = " ".join(f"{p.total / b.total:.2f}" for b, p in zip(baselines, publishes, strict=True))
    print(f"  ratio in each repeat: {pairs}")
    print("  (MB/s is 10^6 bytes per second of the model's size; medians are taken per row)")
    # Other work on a 2-core machine distorts both sides; say so rather than hide it.
    load_after = os.getloadavg()[0]
    print(f"  load average (1 min): {load_before:.2f} at the start, {load_after:.2f} at the end")
    if max(load_before, load_after) > BUSY_LOAD:
        print("  WARNING: the machine was busy with other work; these figures are unreliable")


if __name__ == "__main__":
    sys.exit(main())
