#!/bin/sh
# The Horde guide's download tracker, as a supervised shoal child: it "downloads" in 5% steps
# (one every 200 ms), stores its progress as its checkpoint, and publishes it to group "downloads".
# A copy restarted on another node (its node died) resumes from the last checkpoint.
shoal=${SHOAL_BIN:-shoal}
done_pct=0
if [ -n "${SHOAL_CHECKPOINT_FILE:-}" ] && [ -f "$SHOAL_CHECKPOINT_FILE" ]; then
  done_pct=$(cat "$SHOAL_CHECKPOINT_FILE")
fi
"$shoal" publish downloads "tracker on $SHOAL_NODE resumes at $done_pct%" >/dev/null
while [ "$done_pct" -lt 100 ]; do
  sleep 0.2
  done_pct=$((done_pct + 5))
  printf '%s' "$done_pct" | "$shoal" checkpoint >/dev/null
  "$shoal" publish downloads "$done_pct% (on $SHOAL_NODE)" >/dev/null
done
"$shoal" publish downloads "download complete" >/dev/null
