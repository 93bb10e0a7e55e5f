"""URL converters."""
from werkzeug.routing import IntegerConverter


class RowIdConverter(IntegerConverter):
    """A positive row id that fits a 32-bit signed integer column.

    Larger numbers do not match the route (404) instead of overflowing the
    database driver.
    """

    def __init__(self, map, **kwargs):
        super().__init__(map, min=1, max=2**31 - 1, **kwargs)
