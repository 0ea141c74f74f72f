"""What this connector is made of: the KubeMQ source kinds, the ``aws.s3`` target, and their development services."""

from bindings.registry import Registry
from bindings.sources import SOURCES
from connector.embedded_broker import EmbeddedBrokerService
from connector.product import IDENTITY
from connector.s3 import SHARED_EMBEDDED_S3, S3Target


def registry() -> Registry:
    return Registry.of(SOURCES, [S3Target], development_services=[EmbeddedBrokerService.offer, lambda _settings: SHARED_EMBEDDED_S3], identity=IDENTITY)
