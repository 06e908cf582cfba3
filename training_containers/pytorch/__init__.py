"""PyTorch training program (``python -m training_containers.pytorch.train``)."""
