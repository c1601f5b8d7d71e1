"""A custom codec plugin for the tests: decimal.Decimal <-> its exact text."""
import decimal


class DecimalCodec:
    name = "decimal"
    types = (decimal.Decimal,)

    def encode(self, obj):
        return str(obj)

    def decode(self, value):
        return decimal.Decimal(value)


CODEC = DecimalCodec()
