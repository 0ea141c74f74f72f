"""Files of any size through KubeMQ, for ``kubemq-s3 send``.

A file too large for one message goes up with the ``aws.s3`` multipart
methods, part by part, each part read from the file at its offset and sent
with its SHA-256; an object too large for one reply comes down in ``range``
pieces written at their offsets, then checked against what the store says
about it. Memory stays bounded by the parts in flight, whatever the size.
"""
