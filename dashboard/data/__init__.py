"""The shared caches of engine results, and the models' atlases."""
