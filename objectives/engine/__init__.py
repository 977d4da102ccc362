"""The population engine: members trained together, stacked forward passes, batch allocation."""
