"""Storage drivers: the only code that touches storage."""
