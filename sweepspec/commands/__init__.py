"""One module per CLI command; each ``main(args) -> exit code``."""
