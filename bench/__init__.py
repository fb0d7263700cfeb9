"""Side-by-side benchmarks of Vesalius against peer archives (``make bench``)."""
