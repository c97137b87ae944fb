"""Server-rendered portal pages."""
