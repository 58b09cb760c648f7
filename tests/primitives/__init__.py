"""Tests of the shared gateway primitives: cache, rate limiter, upstream HTTP policy."""
