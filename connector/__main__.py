"""``python -m connector`` is ``kubemq-s3``."""

import sys

from connector.cli import main

sys.exit(main())
