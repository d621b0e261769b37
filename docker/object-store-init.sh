#!/bin/sh
# One-shot set-up of the object store (the `object-store-init` service of compose.yaml, MinIO's `mc`):
#   1. the buckets named by COALCHAIN_LAKE_ROOT and COALCHAIN_LANDING_ROOT (s3://<bucket>/<prefix>);
#   2. the project's own access key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) with a policy that reaches
#      those buckets only, so no service runs with the object store's root credentials.
# Idempotent: every step leaves an existing bucket, user or policy as it is (the secret is re-set).
set -eu

: "${OBJECT_STORE_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
: "${COALCHAIN_LAKE_ROOT:?}" "${COALCHAIN_LANDING_ROOT:?}"

bucket_of() {
  case "$1" in
    s3://*) rest="${1#s3://}"; echo "${rest%%/*}" ;;
    *) echo "object-store-init: $1 is not an s3://bucket/prefix location" >&2; exit 1 ;;
  esac
}
lake_bucket="$(bucket_of "$COALCHAIN_LAKE_ROOT")"
landing_bucket="$(bucket_of "$COALCHAIN_LANDING_ROOT")"

mc alias set store "$OBJECT_STORE_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
for bucket in "$lake_bucket" "$landing_bucket"; do
  mc mb --ignore-existing "store/$bucket"
done

policy="${TMPDIR:-/tmp}/coalchain-policy.json"
cat >"$policy" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::$lake_bucket", "arn:aws:s3:::$landing_bucket"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                   "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::$lake_bucket/*", "arn:aws:s3:::$landing_bucket/*"]}
  ]
}
EOF
mc admin policy create store coalchain "$policy"
mc admin user add store "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
if ! mc admin user info store "$AWS_ACCESS_KEY_ID" | grep -q 'coalchain'; then
  mc admin policy attach store coalchain --user "$AWS_ACCESS_KEY_ID"
fi
echo "object-store-init: buckets $lake_bucket, $landing_bucket; access key $AWS_ACCESS_KEY_ID limited to them"
