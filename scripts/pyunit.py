"""Runs one package's Python unittest suite and writes {passed, failed, skipped} as JSON.

usage: python3 scripts/pyunit.py <package>/python <report.json>
"""
import json
import sys
import unittest


def main() -> int:
    top, report = sys.argv[1], sys.argv[2]
    suite = unittest.defaultTestLoader.discover(top, pattern="test*.py", top_level_dir=top)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    with open(report, "w", encoding="utf-8") as handle:
        json.dump({"passed": passed, "failed": failed, "skipped": skipped}, handle)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
