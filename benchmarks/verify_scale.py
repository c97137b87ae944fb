"""Benchmark the reference verifier over a long export: rows/s and peak memory, against
`sha256sum` of the same file.

    .venv/bin/python benchmarks/verify_scale.py [--rows 10000000] [--work DIR]

No database: the export is written here, line by line in the form `gateway audit
export` writes (canonical entries of download.requested rows of about 300 bytes, each
with its leaf hash), with a checkpoint over all of it signed by a fresh log key, as the
gateway signs one. Then, timed as processes, 3 runs each, the median:

- the reference verifier, `python3 -I -S reference_verify.py EXPORT --checkpoint CP
  --public-key KEY` (the standard library alone), with its peak memory from
  `/usr/bin/time -f %M`; the target is >= 200,000 rows/s in bounded memory;
- the baseline: `sha256sum EXPORT`, one C pass over the same bytes.

benchmarks/evidence_log.py measures the same verifier over an export of a real sealed
log; this one reaches sizes that sealing would take too long to write here.
Exit code 0 whether or not the target is met.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.evidence_log import checkpoints as notes
from gateway.evidence_log import reference_verify
from gateway.evidence_log.entries import entry, export_line
from gateway.evidence_log.tree import leaf_hash

ROOT = Path(__file__).resolve().parents[1]
TARGET = 200_000
RUNS = 3
NAME = "bench.example/evidence"


def write_export(path: Path, rows: int) -> bytes:
    """The export of `rows` rows; the root of their tree."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stack: list[bytes] = []
    with path.open("wb", buffering=1 << 20) as out:
        for index in range(rows):
            data = {
                "artifact": 1 + index % 4,
                "download": f"d-{index}",
                "grant": f"grant-{index % 2000}",
                "key": "k",
                "method": "GET",
                "new_download": index % 10 == 0,
                "outcome": "allowed",
                "path": f"model-{index % 4}.safetensors",
                "range": None,
                "tier": "trusted_partner",
            }
            body = entry(
                index=index,
                evidence_id=index + 1,
                at=start + timedelta(seconds=index * 3),
                kind="download.requested",
                actor=f"account:seed-{index % 2000}",
                model_id=1,
                release_id=1,
                account_id=f"seed-{index % 2000}",
                data=data,
                personal=None,
            )
            hashed = leaf_hash(body)
            out.write(export_line(body, hashed))
            stack.append(hashed)
            size = index + 1
            while not size & 1:
                right = stack.pop()
                stack[-1] = reference_verify.node_hash(stack[-1], right)
                size >>= 1
    root = stack[-1]
    for left in reversed(stack[:-1]):
        root = reference_verify.node_hash(left, root)
    return root


def _median(command: list[str]) -> tuple[float, str]:
    times, output = [], ""
    for _ in range(RUNS):
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - began)
        output = done.stderr
    return statistics.median(times), output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    root_dir = Path(tempfile.mkdtemp(prefix="verify-", dir=args.work))
    try:
        export = root_dir / "evidence.jsonl"
        began = time.perf_counter()
        root = write_export(export, args.rows)
        written = time.perf_counter() - began
        key = Ed25519PrivateKey.generate()
        text = notes.body(NAME, args.rows, root, datetime.now(UTC))
        (root_dir / "cp.txt").write_text(notes.sign(key, NAME, text))
        public = key.public_key().public_bytes_raw()
        (root_dir / "key.txt").write_text(notes.verifier_key(NAME, public) + "\n")
        size = export.stat().st_size
        print(f"reference verifier, {args.rows:,} rows, {size / 2**20:,.0f} MiB export")
        print(f"  export written      {written:7.1f} s")
        verifier = [
            "/usr/bin/time",
            "-f",
            "%M",
            sys.executable,
            "-I",
            "-S",
            reference_verify.__file__,
            str(export),
            "--checkpoint",
            str(root_dir / "cp.txt"),
            "--public-key",
            str(root_dir / "key.txt"),
        ]
        took, stderr = _median(verifier)
        peak = int(stderr.strip().splitlines()[-1]) / 1024
        base, _ = _median(["sha256sum", str(export)])
        rate, floor = args.rows / took, args.rows / base
        met = "met" if rate >= TARGET else "missed"
        print(f"  sha256sum (baseline) {floor:>12,.0f} rows/s  ({base:.1f} s)")
        print(
            f"  reference verifier   {rate:>12,.0f} rows/s  ({took:.1f} s; ÷ sha256sum "
            f"{rate / floor:.2f}; peak memory {peak:.1f} MiB; target >= {TARGET:,}: {met})"
        )
    finally:
        shutil.rmtree(root_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
