"""What this connector is made of: the KubeMQ source kinds and the ``aws.s3`` target."""

from bindings.registry import Registry
from bindings.sources import SOURCES
from connector.s3 import S3Target


def registry() -> Registry:
    return Registry.of(SOURCES, [S3Target])
