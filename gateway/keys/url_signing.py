"""The keys that sign download URLs: rotation and re-sealing, as operator actions.

Rotating records its evidence (`signing_key.rotated`) in the same unit of work as the
new key, so the log says when URLs started to be signed by which key, and who did it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import evidence
from gateway.credentials import url_tokens
from gateway.credentials.key_encryption import KeyEncryptor
from gateway.db.uow import UnitOfWork
from stages import evidence as ev
from stages.actors import Actor


@dataclass(frozen=True)
class Rotation:
    kid: str
    retired: list[str]


async def rotate_url_signing(uow: UnitOfWork, *, actor: str) -> Rotation:
    """Start signing download URLs with a new key; the old ones verify until the longest
    URL lifetime (plus caching and leeway) is over."""
    rt = uow.rt
    now = rt.clock()
    longest = max(tier.url_ttl_seconds for tier in rt.policy.ladder)
    session = await uow.write()
    kid, retired = await url_tokens.rotate(session, rt.key_encryptor, now, longest)
    evidence.record(
        session,
        ev.SigningKeyRotated(kid=kid, retired=tuple(retired)),
        actor=Actor.parse(actor),
        at=now,
    )
    rt.url_keys.forget()
    return Rotation(kid=kid, retired=retired)


async def reseal_url_signing_keys(uow: UnitOfWork, encryptor: KeyEncryptor) -> tuple[int, int]:
    """Seal every URL signing key with `encryptor`'s current key-encryption key; (rows
    re-sealed, rows in all). Every key is opened first, so a wrong key writes nothing."""
    from gateway.evidence_log.service import reseal_log_key

    session = await uow.write()
    changed, total = await url_tokens.reseal_keys(session, encryptor)
    # The key that signs the evidence log's checkpoints is sealed the same way.
    return changed + await reseal_log_key(session, encryptor), total
