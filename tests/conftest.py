"""Test-wide guards: no AWS credential or metadata lookups leave this machine."""

from __future__ import annotations

import os

# botocore's credential chain may probe the EC2 metadata address; tests must never send anything there
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
