"""core.memory: how much memory there is, and refusing an estimate that cannot fit."""
import os

import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.core.memory import available_bytes, require_fits


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
