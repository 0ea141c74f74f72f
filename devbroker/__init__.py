"""Embedded KubeMQ-compatible gRPC broker for ``kubemq-s3 broker``, ``address: embedded`` and tests."""

from devbroker.server import EmbeddedBroker, serve_forever

__all__ = ["EmbeddedBroker", "serve_forever"]
