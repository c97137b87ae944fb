"""Moving releases through their stages."""
