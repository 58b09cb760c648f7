"""Tests of the notifier process and its delivery."""
