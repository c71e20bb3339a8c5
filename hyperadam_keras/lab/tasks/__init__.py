"""Optimizee tasks: the task protocol, the paper's tasks, task augmentation and the task registry."""
