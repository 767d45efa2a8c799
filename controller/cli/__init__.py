"""The `modelrelease` command line."""
