"""Data files shipped with orchestra: the price table and simulated-latency profiles."""
