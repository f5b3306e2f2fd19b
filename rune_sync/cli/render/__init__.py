"""Views: one module per output format. They render values; they never compute them."""
