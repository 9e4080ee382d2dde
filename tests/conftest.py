"""Suite-wide test settings."""

from hypothesis import settings

# Speed is measured by benchmarks/, never asserted in tests: no per-example deadlines (a slow CI core would
# otherwise fail a property test on time alone).
settings.register_profile("project", deadline=None)
settings.load_profile("project")
