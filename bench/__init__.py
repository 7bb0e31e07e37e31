"""`make bench`: the gateway measured against baselines run on the same machine at the same time.

Absolute times differ between machines, so every figure is reported next to a baseline
measured in the same run, and as the ratio of the two.
"""
