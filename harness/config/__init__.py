"""scenarios.yaml -> immutable, validated scenario objects.

Parse once, then trust: everything downstream receives these frozen objects
and never re-validates or reads raw dicts. Every error names file, line and key.

    scenario.py  Scenario and its parts (workload, load and its timeline, SLO, faults); its target's
                 model comes from the backend (harness.targets), built on harness.core.models
    files.py     reading scenario files and suites (harness.core.yamlsrc keeps each key's line);
                 command-line overrides
"""

from harness.config.files import get_scenario, load_scenarios, load_suite, with_overrides
from harness.config.scenario import (
    SCHEMA_VERSION,
    TARGET_KINDS,
    AmountRange,
    Fault,
    Load,
    Scenario,
    Slo,
    Step,
    StepSpan,
    Workload,
)
from harness.core.models import Frozen, TargetConfig, Variant

__all__ = ["SCHEMA_VERSION", "TARGET_KINDS", "AmountRange", "Fault", "Frozen", "Load", "Scenario", "Slo", "Step",
           "StepSpan", "TargetConfig", "Variant", "Workload", "get_scenario", "load_scenarios", "load_suite",
           "with_overrides"]
