"""Fixtures of bench section [8] (python bridge), imported by every contender's Python child."""


def floats(n):
    """A list of n floats: the payload of scenario D (100,000 floats, about 1 MB of JSON)."""
    return [i * 0.5 for i in range(n)]
