"""Data files shipped with orchestra: the project's price rows (for models the genai-prices
catalogue lacks or misprices), recorded names of catalogue models, simulated-latency profiles."""
