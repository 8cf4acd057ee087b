"""``with`` support for the client's objects: leaving the block calls ``close()``."""


class Closing:
    """Mixin for classes with a ``close()`` method: ``with X(...) as x:`` closes x on the way out."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
