"""What this connector is made of: the KubeMQ sources and targets, the ``aws.s3`` target and source, and their development services."""

from bindings.kubemq import SOURCES
from bindings.kubemq.sdk import KUBEMQ_PARTS
from bindings.kubemq.targets import TARGETS
from bindings.registry import Registry
from connector.embedded_broker import EmbeddedBrokerService, EmbeddedBrokerSettings
from connector.product import IDENTITY
from connector.s3 import SHARED_EMBEDDED_S3, S3Target
from connector.s3.internals import AIOBOTOCORE_PARTS, BOTOCORE_PARTS
from connector.s3_source import S3Source


def registry() -> Registry:
    return Registry.of(
        [*SOURCES, S3Source],
        [S3Target, *TARGETS],
        development_services=[EmbeddedBrokerService.offer, lambda _settings: SHARED_EMBEDDED_S3],
        identity=IDENTITY,
        private_parts=[KUBEMQ_PARTS, BOTOCORE_PARTS, AIOBOTOCORE_PARTS],
        settings=[EmbeddedBrokerSettings],
    )
