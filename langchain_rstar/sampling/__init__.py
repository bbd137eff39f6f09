"""Sampling: requests, the sampler that turns them into model calls, vote caching, text cleanup."""
