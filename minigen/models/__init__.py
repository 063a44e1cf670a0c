"""One module per model family: each builds its networks, writes its loss as the
formula, and takes a train step with value_and_grad and an optimiser."""
