"""Reference implementations of the spec, used only for agreement checks and timing."""
