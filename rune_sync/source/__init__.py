"""Where specs come from: a directory (git repositories arrive later)."""
