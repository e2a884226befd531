"""Environments: one per module (coevo, civic)."""
