"""Helpers the test tiers share: no tests here, and no test module imports another."""
