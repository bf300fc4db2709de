"""Energy and thermal state per shard and per speed-probe repetition (pure core: no Ray, no psutil at import).

One small module per source: `rapl` (powercap / amd_energy counters), `battery` (discharge and power
source), `state` (clock, temperature, throttle counters, the throttled verdict); `meter` puts them
together. Methods recorded: `rapl-package`, `rapl-psys`, `battery`, `none`.
"""

from lqbench.energy.base import METHODS, Energy, Sysfs
from lqbench.energy.meter import EnergyMeter, EnergyWindow, ShardMeter, diagnose

__all__ = ["METHODS", "Energy", "EnergyMeter", "EnergyWindow", "ShardMeter", "Sysfs", "diagnose"]
