"""Example codec plugins: `decimal.Decimal` <-> its string, `fractions.Fraction` <-> [numerator, denominator].

Load them with `configure.codecs: ["tests.codec_example:CODECS"]` (or `...:DECIMAL`).
"""
from decimal import Decimal
from fractions import Fraction


class DecimalCodec:
    name = "decimal"
    types = (Decimal,)

    def encode(self, obj):
        return str(obj)

    def decode(self, value):
        return Decimal(value)


class FractionCodec:
    name = "fraction"
    types = (Fraction,)

    def encode(self, obj):
        return [obj.numerator, obj.denominator]  # big ints become tagged ints

    def decode(self, value):
        return Fraction(value[0], value[1])


DECIMAL = DecimalCodec()
CODECS = [DECIMAL, FractionCodec()]
