"""Apply: carry out a plan through the drivers, recording every step in the state.

:func:`~rune_sync.apply.engine.execute` is the entry point; :mod:`.steps` holds what one
change does, :mod:`.executor` the parallel walk of the plan's DAG, :mod:`.retry` the
retry policy, :mod:`.recorder` the per-step state writes, :mod:`.events` what is
reported while it runs.
"""
