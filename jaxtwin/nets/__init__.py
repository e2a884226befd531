"""flax.linen networks: policy MLPs, LSTM forecaster, actor-critic."""
