"""Fine-tuning tasks: readers, features, losses, metrics and post-processing, one module per task."""
