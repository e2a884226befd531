"""core.memory: how much memory there is, and refusing an estimate that cannot fit."""
import os

import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.core.memory import Need, available_bytes, lanes_per_device, require_all_fit, require_fits


class FakeDevice:
    platform = "gpu"

    def __init__(self, stats):
        self.stats = stats

    def memory_stats(self):
        return self.stats


def test_available_bytes_device_limit_else_host_memory():
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert available_bytes(FakeDevice({"bytes_limit": 123, "bytes_in_use": 1})) == 123
    assert available_bytes(FakeDevice(None)) == host
    assert available_bytes(FakeDevice({})) == host
    assert available_bytes() > 0


def test_require_fits_names_estimate_memory_and_option():
    require_fits(100, "a solve", "--n", device=FakeDevice({"bytes_limit": 100}))
    with pytest.raises(ConfigError, match=r"^a solve needs about 2\.5 GB, more than the 1 GB of gpu device "
                                          r"memory; lower --n$"):
        require_fits(2.5e9, "a solve", "--n", device=FakeDevice({"bytes_limit": 10**9}))
    with pytest.raises(ConfigError, match=r"needs about 1,234,568 GB"):
        require_fits(1.2345678e15, "x", "--T")


def test_require_all_fit_names_the_largest_need():
    small, big = Need(2e9, "a setup", "--a"), Need(5e9, "a finish", "--b")
    fits = Need(10, "a tiny one", "--c")
    device = FakeDevice({"bytes_limit": 10**9})
    require_all_fit([fits], device=device)
    with pytest.raises(ConfigError, match=r"^a finish needs about 5 GB, .*; lower --b$"):
        require_all_fit([fits, small, big], device=device)


def test_lanes_per_device_divides_only_on_accelerators(monkeypatch):
    """CPU devices, split or not, share the host memory: every lane counts; an accelerator
    holds its share of the padded batch."""
    import jax

    import jaxtwin.core.memory as memory

    assert jax.devices()[0].platform == "cpu"
    assert lanes_per_device(10, 1) == lanes_per_device(10, 0) == 10
    monkeypatch.setattr(memory.jax, "devices", lambda: [FakeDevice({})] * 4)
    assert (lanes_per_device(10, 0), lanes_per_device(10, 2), lanes_per_device(10, 1)) == (3, 5, 10)
