"""What a user runs: the `orchestra` command and its subcommands, and the notebook dashboards.

Nothing of the engine imports from here; these modules import the engine.
"""
