"""`gateway serve --demo`: a small, real model release so a newcomer sees a working catalog.

The weights are generated (seeded, so every machine gets the same bytes) in the
safetensors format, with a model card, a config, a tokenizer stub and a license.
"""

from __future__ import annotations

import json
import random
import struct
from functools import partial
from pathlib import Path

from gateway.db.uow import run_unit
from gateway.errors import Conflict
from gateway.publishing.service import PublishRequest, publish_release
from gateway.runtime import Runtime
from gateway.staging.promotion import promote
from stages.names import ModelRef

DEMO_MODEL = ModelRef("demo", "tiny-lm")
ACTOR = "demo-seed"

LICENSE = """Tiny-LM Demo Model License

Permission is granted to download and use the Tiny-LM weights for research and
evaluation, subject to the use guidance published with each release. Redistribution
of the weights requires the same terms. The weights are provided "as is", without
warranty of any kind.
"""

GUIDANCE = """Use guidance: do not use Tiny-LM to generate content that deceives people about
its origin; report misuse and safety problems through the gateway's incident form.
"""


def _safetensors(tensors: dict[str, tuple[list[int], int]], seed: int) -> bytes:
    """A valid safetensors file of F32 tensors filled with seeded random bytes."""
    rng = random.Random(seed)  # noqa: S311 - reproducible filler bytes, not secrets
    header: dict[str, object] = {
        "__metadata__": {"format": "pt", "generator": "release-gateway demo"}
    }
    offset = 0
    blobs: list[bytes] = []
    for name, (shape, count) in tensors.items():
        size = count * 4
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        blobs.append(rng.randbytes(size))
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format asks for 8-byte alignment of the data
    return struct.pack("<Q", len(raw)) + raw + b"".join(blobs)


def write_demo_folder(folder: Path, version: str) -> None:
    """Write the demo release's files into `folder`."""
    seed = sum(map(ord, version))
    folder.mkdir(parents=True, exist_ok=True)
    hidden, vocab = 256, 2048
    (folder / "model.safetensors").write_bytes(
        _safetensors(
            {
                "embed.weight": ([vocab, hidden], vocab * hidden),
                "block.0.attn.weight": ([hidden, 3 * hidden], hidden * 3 * hidden),
                "block.0.mlp.weight": ([hidden, 4 * hidden], hidden * 4 * hidden),
                "lm_head.weight": ([hidden, vocab], hidden * vocab),
            },
            seed,
        )
    )
    (folder / "config.json").write_text(
        json.dumps(
            {"model_type": "tiny-lm", "hidden_size": hidden, "vocab_size": vocab, "layers": 1},
            indent=2,
        )
    )
    (folder / "README.md").write_text(
        f"# Tiny-LM {version}\n\nA one-layer demonstration language model published by the "
        "Release Gateway demo.\nIt generates nothing useful; it exists to show staged release.\n\n"
        "## Intended use\nTrying out the gateway: publishing, stages, downloads and signatures.\n"
    )
    (folder / "generate.py").write_text(
        '"""Load the demo weights."""\n\n'
        "from safetensors.numpy import load_file\n\n"
        "weights = load_file('model.safetensors')\n"
        "print({name: w.shape for name, w in weights.items()})\n"
    )
    eval_dir = folder / "eval"
    eval_dir.mkdir(exist_ok=True)
    (eval_dir / "prompts.jsonl").write_text(
        "\n".join(json.dumps({"prompt": f"Example prompt {i}"}) for i in range(20)) + "\n"
    )


async def seed_demo(rt: Runtime) -> list[str]:
    """Publish the demo releases if they are missing; return what was published."""
    done: list[str] = []
    root = rt.settings.home / "demo"
    license_file = root / "LICENSE.txt"
    guidance_file = root / "GUIDANCE.txt"
    root.mkdir(parents=True, exist_ok=True)
    license_file.write_text(LICENSE)
    guidance_file.write_text(GUIDANCE)
    # 1.0 is open to every tier of the policy; 1.1 to its first only (behind the API,
    # in the shipped policy): two stages to look at.
    tiers = rt.policy.ladder.names
    for version, stages in (("1.0", tiers), ("1.1", tiers[:1])):
        folder = root / f"tiny-lm-{version}"
        write_demo_folder(folder, version)
        request = PublishRequest(
            model=DEMO_MODEL,
            version=version,
            folder=folder,
            license_file=license_file,
            guidance_file=guidance_file,
        )
        try:
            await run_unit(rt, partial(publish_release, request=request, actor=ACTOR))
        except Conflict:
            continue
        for stage in stages:
            # The demo has no evaluations or grantees to earn its stages with: it says so.
            await run_unit(
                rt,
                partial(
                    promote,
                    model=DEMO_MODEL,
                    version=version,
                    target=stage,
                    actor=ACTOR,
                    override_reason="demo release, seeded without evidence",
                ),
            )
        done.append(f"{DEMO_MODEL}:{version}")
    return done
