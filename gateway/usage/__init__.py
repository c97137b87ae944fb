"""How releases are used: daily rollups of the evidence log, and reports over them."""
