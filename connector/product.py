"""The product's names, in one place: the engine (``bindings/``) names no product and is told these."""

from bindings.registry import Identity

NAME = "kubemq-s3"
IDENTITY = Identity(name=NAME, metric_prefix="kubemq_s3", schema_id="https://github.com/kubemq-s3/kubemq-s3/config.schema.json")
# The target kind this product serves: the `send` command's channels are `<pattern>.aws.s3`, as in kubemq-targets' examples.
TARGET_KIND = "aws.s3"
SEND_CLIENT_ID = f"{NAME}-send"


def default_channel(pattern: str) -> str:
    """The channel `send` uses when none is given: ``query.aws.s3``, ``queue.aws.s3`` ..."""
    return f"{pattern}.{TARGET_KIND}"
