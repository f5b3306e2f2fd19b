"""Watch mode: reconcile once, then again on every change (DESIGN §10).

The layer between the command line and apply. It owns scheduling (:mod:`.loop`), what
wakes the loop (:mod:`.triggers`, :mod:`.poll` for a git source, :mod:`.http`'s
webhook), the health and metrics a running watcher exposes (:mod:`.metrics`,
:mod:`.http`), its structured log lines (:mod:`.logs`) and which changes a cycle may
carry out without an operator's flag (:mod:`.withhold`). What one cycle does is a
callable given by the caller (``rune_sync.cli.watch``), so nothing here imports the
command line.
"""
