"""Tests of :mod:`rune_sync.secrets`: real directories, files and environments."""
