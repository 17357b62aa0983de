"""Encoder backbones built offline from locally installed packages (nothing is downloaded)."""
