"""Desired + recorded + observed → a Plan value (pure), saved and loaded as a file."""
