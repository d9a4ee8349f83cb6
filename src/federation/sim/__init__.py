"""The simulator: many pure cores over a simulated network, in one process."""
