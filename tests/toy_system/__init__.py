"""A toy system registered by ``tests/test_contributing.py`` exactly as CONTRIBUTING.md says."""
