"""Training: Hungarian matching, set losses, optimiser and schedule, the training engine."""
