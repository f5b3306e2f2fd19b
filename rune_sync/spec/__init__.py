"""The desired state: from bytes on disk to validated, typed specs."""
