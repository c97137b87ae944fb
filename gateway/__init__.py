"""Release Gateway: staged release of open model weights."""

__version__ = "0.1.0"
