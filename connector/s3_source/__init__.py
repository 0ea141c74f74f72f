"""The ``aws.s3`` source: objects that land in a bucket become KubeMQ messages (kubemq-sources' ``aws.s3``, without its losses)."""

from connector.s3_source.source import S3Source

__all__ = ["S3Source"]
