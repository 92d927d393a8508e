#!/usr/bin/env bash
# Run the test suite with the process clock set to awkward moments, to prove no test depends
# on the wall clock, the weekday, the holidays or the year (issue 10).
#
# The clock is moved with libfaketime. Debian's build (0.9.10) breaks Python's time.sleep
# ("Invalid argument") once monotonic time is left real, so this uses the library vendored by
# the `libfaketime` wheel on PyPI (a test tool only, installed here on demand). The clock
# starts at each moment and keeps ticking; monotonic time stays real so timeouts behave.
#
# Usage: scripts/anytime.sh [pytest args...]      (from the project's virtual environment)
# The moments, in São Paulo time: Sunday 02:00, Christmas (a national holiday) 12:00,
# a Wednesday 19:30, and a Thursday in 2029 (past the catalog's holiday list).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import libfaketime" 2>/dev/null || python -m pip install --quiet libfaketime
lib=$(python -c "import libfaketime, os; print(os.path.join(libfaketime._get_lib_path(), 'libfaketime.so.1'))")
# "UTC instant|machine time zone": the machine's zone varies too.
moments=(
  "2026-12-06 05:00:00|UTC"                 # Sunday 02:00 -03:00
  "2026-12-25 15:00:00|Asia/Tokyo"          # Friday 25 December (Natal) 12:00 -03:00
  "2026-12-02 22:30:00|America/Sao_Paulo"   # Wednesday 19:30 -03:00
  "2029-05-17 17:00:00|America/New_York"    # Thursday 14:00 -03:00
)
failed=0
for entry in "${moments[@]}"; do
  moment=${entry%|*}
  zone=${entry#*|}
  echo "== pytest with the clock at ${moment} UTC, machine zone ${zone}"
  # A relative offset (seconds from now), because libfaketime reads "@date" in the local zone.
  offset=$(( $(date -u -d "${moment}" +%s) - $(date -u +%s) ))
  if ! TZ="$zone" LD_PRELOAD="$lib" FAKETIME="$(printf %+d "$offset")" FAKETIME_DONT_FAKE_MONOTONIC=1 \
      pytest -q -p no:cacheprovider "$@"; then
    echo "!! failed with the clock at ${moment} UTC, machine zone ${zone}"
    failed=1
  fi
done
exit "$failed"
