"""Learners: make_train(config) -> train(key), all jittable."""
