"""The counterbench exception tree.

    CounterbenchError            base; every error the CLI turns into exit code 2
    ├── ConfigError              scenarios.yaml or a command-line value is wrong (names file:line:key)
    ├── SafetyError              a non-loopback target without ``allow_remote: true``
    ├── StackError               a local server of the embedded stack did not start
    ├── TargetError              the target could not be set up or its final state not read
    │   ├── TargetUnreachable    nothing answered at the target's address
    │   └── PreflightFailed      its answers to one set, op and read cannot be read (harness.preflight)
    ├── HistoryError             a history file could not be written or read
    │   └── HistorySchemaError   a history written by an unknown schema version
    ├── RunFolderError           a run folder lacks what a stage needs (run.json, state.json, ...)
    └── RunStopped               a stop signal came before the load started: no verdict

A second stop signal raises ``harness.core.stopping.Interrupted``, a BaseException like
KeyboardInterrupt: every child was killed, nothing can be judged.

Errors of single operations are never raised out of a load user: they are
classified (harness.targets.classify) into ``fail`` or ``indeterminate`` and recorded.
"""

from __future__ import annotations


class CounterbenchError(Exception):
    """Base class: a problem the user can act on; the CLI exits with code 2."""


class ConfigError(CounterbenchError):
    """A scenario file or command-line value is invalid."""


class SafetyError(CounterbenchError):
    """Load would leave this machine although the scenario did not allow it."""


class StackError(CounterbenchError):
    """A server of the embedded local stack could not be started."""


class TargetError(CounterbenchError):
    """The target could not be prepared or its final state read."""


class TargetUnreachable(TargetError):
    """Nothing answered at the target's address."""


class HistoryError(CounterbenchError):
    """A history could not be written or read; the run's evidence is damaged."""


class HistorySchemaError(HistoryError):
    """A history file of a schema version this counterbench does not know."""


class RunFolderError(CounterbenchError):
    """A run folder is missing a file a stage needs, or holds an invalid one."""


class RunStopped(CounterbenchError):
    """A stop was requested before the load started: there is nothing to judge."""
