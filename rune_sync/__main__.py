"""``python -m rune_sync`` runs the command line."""

from rune_sync.cli import main

if __name__ == "__main__":
    main()
