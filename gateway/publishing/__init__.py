"""Publishing a release from a folder."""
