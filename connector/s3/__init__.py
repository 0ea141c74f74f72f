"""The ``aws.s3`` target (kubemq-targets compatible) and its embedded SeaweedFS."""

from connector.s3.embedded import SHARED as SHARED_EMBEDDED_S3
from connector.s3.embedded import EmbeddedS3, EmbeddedS3Error
from connector.s3.options import S3Properties
from connector.s3.target import METHODS, S3Target

__all__ = ["METHODS", "SHARED_EMBEDDED_S3", "EmbeddedS3", "EmbeddedS3Error", "S3Properties", "S3Target"]
