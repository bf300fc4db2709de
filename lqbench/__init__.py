"""lqbench: how well do quantized code LLMs write Lua on the laptops people own?

The pure core lives in this package and never imports ray; `cluster/` (head side)
and `agents/` (laptop side) are thin Ray layers over it.
"""

__version__ = "0.1.0"
