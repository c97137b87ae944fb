"""Download manifests, signed URLs and the /d/ endpoint."""
