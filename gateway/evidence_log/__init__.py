"""The evidence log: a Merkle tree over every evidence row, signed checkpoints, proofs."""
