"""Where specs come from: a directory, or a commit of a git repository.

:func:`rune_sync.source.opener.open_source` turns what the user typed (SOURCE, ``--ref``,
``--path``) into a :class:`~rune_sync.source.base.SourceSnapshot`: a directory to load
plus its provenance. Git sources are fetched into a cache of clones
(:mod:`~rune_sync.source.cache`) and exported per commit; :mod:`~rune_sync.source.history`
refuses rollbacks and unsigned commits. Nothing here parses specs.
"""
