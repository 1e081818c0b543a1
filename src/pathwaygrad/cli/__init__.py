"""Command-line interface: ``pathwaygrad <command> ...``."""
