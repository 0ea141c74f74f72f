"""Shared test setup: real servers only (embedded broker, SeaweedFS), on 127.0.0.1."""

import logging
import os

# Never probe the EC2 metadata address for credentials; keep grpc-core quiet.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
logging.getLogger("kubemq").setLevel(logging.ERROR)

pytest_plugins = ["tests.fixtures.s3", "tests.fixtures.kubemq", "tests.fixtures.s3_targets", "tests.fixtures.certificates"]
