"""CLI command modules: each defines `register(app)` and keeps its body to argument handling."""
