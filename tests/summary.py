#!/usr/bin/python3
"""Counts individual test cases across meson runs: cmocka's per-test lines from each unit test's
output, and pytest's junit XML for the integration suite. Prints one closing line:
"berth tests: N passed, N failed, N skipped" and exits non-zero when a case failed or a meson
test failed without reporting cases (a crash)."""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def count_build(build):
    passed = failed = skipped = 0
    crashed = []
    log = os.path.join(build, "meson-logs", "testlog.json")
    with open(log) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    for e in entries:
        # cmocka prints its summary on stderr; meson names tests "project:suite / name"
        out = (e.get("stdout", "") or "") + (e.get("stderr", "") or "")
        if e["name"].endswith("/ integration") or e["name"] == "integration":
            xml = os.path.join(build, "tests", "integration.xml")
            if not os.path.exists(xml):
                crashed.append(e["name"])
                continue
            for suite in ET.parse(xml).getroot().iter("testsuite"):
                t = int(suite.get("tests", 0))
                f_ = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
                s = int(suite.get("skipped", 0))
                passed += t - f_ - s
                failed += f_
                skipped += s
            if e["result"] not in ("OK", "SKIP") and failed == 0:
                crashed.append(e["name"])
            continue
        closing = re.findall(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?", out, re.M)
        if closing:  # a script that counts its own checks (the vm and engines suites)
            p_, f_, s_ = (int(n or 0) for n in closing[-1])
            ok = e["result"] in ("OK", "SKIP")
            passed += p_
            skipped += s_
            failed += f_ + (0 if ok or f_ else 1)
            if not ok and not f_:
                crashed.append(e["name"])
            continue
        if "[==========]" not in out:
            # a whole-program test (a fuzz run): one case, by its result
            ok = e["result"] == "OK"
            passed += ok
            failed += not ok
            continue
        p = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
        fl = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
        sk = sum(int(n) for n in re.findall(r"\[  SKIPPED \] (\d+) test", out))
        if p + fl + sk == 0 or (e["result"] not in ("OK", "SKIP") and fl == 0):
            crashed.append(e["name"])
            fl += 1
        passed += p
        failed += fl
        skipped += sk
    return passed, failed, skipped, crashed


def main():
    total = [0, 0, 0]
    bad = False
    for build in sys.argv[1:]:
        p, f, s, crashed = count_build(build)
        print(f"{build}: {p} passed, {f} failed, {s} skipped"
              + (f" (crashed: {', '.join(crashed)})" if crashed else ""))
        total = [total[0] + p, total[1] + f, total[2] + s]
        bad |= bool(f or crashed)
    print(f"berth tests: {total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if bad or total[0] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
