"""`[core] hostname_callable` for the CeleryExecutor test: both workers run on one machine, so each one
reports the name the test gave it (`WRITEBACK_TEST_WORKER`) as the hostname of the task instances it runs."""

import os
import socket


def hostname() -> str:
    return os.environ.get("WRITEBACK_TEST_WORKER") or socket.getfqdn()
