#!/bin/sh
# Upload a landing folder (mounted at /landing) to COALCHAIN_LANDING_ROOT with the project's access key
# (the `load-sample` service of compose.yaml, profile `tools`). Files already in the bucket are skipped:
# landing files are immutable, a delivery is a new file.
set -eu

: "${OBJECT_STORE_URL:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${COALCHAIN_LANDING_ROOT:?}"
case "$COALCHAIN_LANDING_ROOT" in
  s3://*) target="${COALCHAIN_LANDING_ROOT#s3://}" ;;
  *) echo "load-sample: $COALCHAIN_LANDING_ROOT is not an s3://bucket/prefix location" >&2; exit 1 ;;
esac

mc alias set store "$OBJECT_STORE_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null
mc mirror /landing "store/${target%/}"
