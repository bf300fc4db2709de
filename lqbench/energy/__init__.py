"""Energy and thermal state per shard and per speed-probe repetition (pure core: no Ray, no psutil at import).

One small module per source: `rapl` (powercap / amd_energy counters), `battery` (discharge and power
source), `state` (clock, temperature, throttle counters, the throttled verdict); `meter` puts them
together. Methods recorded: `rapl-package`, `rapl-psys`, `battery`, `none`.

A shard (agents/agent.py):

    with ShardMeter() as meter:
        for record in run_shard(...):
            meter.observe(record.gen_tokens, record.gen_ms)
    ShardRecord(..., **meter.columns())

A speed-probe repetition: find the counters once per node, open one window per repetition

    meter = EnergyMeter()
    window = meter.begin(); ...run the repetition...; energy = window.finish()
    energy.joules, energy.method, energy.seconds, energy.watts, energy.domains, energy.note

or `with ShardMeter(meter) as m: ...` around a repetition for the same columns as a shard (state included).
A battery refreshes its counter every few seconds to a minute, so short windows on `battery` come out `none`.
`diagnose()` -> [(status, message)] for `lqbench doctor` / `join`.
"""

from lqbench.energy.base import METHODS, Energy, Sysfs
from lqbench.energy.meter import EnergyMeter, EnergyWindow, ShardMeter, diagnose

__all__ = ["METHODS", "Energy", "EnergyMeter", "EnergyWindow", "ShardMeter", "Sysfs", "diagnose"]
