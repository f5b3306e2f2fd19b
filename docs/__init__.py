"""Generators of the reference pages in docs/ (``python -m docs.gen``)."""
