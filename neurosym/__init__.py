"""neurosym: discrete concept layers and the neural half of the bridge (tensors only)."""
