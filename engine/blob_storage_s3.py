"""The S3-compatible `BlobStore` (AWS S3, MinIO, ...) through boto3, with path-style addressing so an
endpoint such as `http://minio:9000` works without per-bucket DNS names.

Every failure to reach or use the store is `Unavailable` (a 503), so a request that needed the blob is
not acknowledged; credentials never appear in a message.
"""

from __future__ import annotations

import logging

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from engine.blob_storage import check_key
from engine.errors import Unavailable

logger = logging.getLogger(__name__)

_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
_OWNED_BUCKET_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Blobs as objects of one bucket; keys are used as object keys unchanged."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
    ) -> None:
        self.bucket = bucket
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists. :raises Unavailable: the store cannot be reached."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if _error_code(error) not in _MISSING_BUCKET_CODES:
                raise self._unavailable("check the bucket", error) from None
        except BotoCoreError as error:
            raise self._unavailable("check the bucket", error) from None
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _error_code(error) not in _OWNED_BUCKET_CODES:
                raise self._unavailable("create the bucket", error) from None
        except BotoCoreError as error:
            raise self._unavailable("create the bucket", error) from None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        check_key(key)
        try:
            self._put(key, data, content_type)
        except ClientError as error:
            if _error_code(error) != "NoSuchBucket":
                raise self._unavailable("store a blob", error) from None
            # The bucket was missing at start-up (store unreachable then) or has been removed since.
            self.ensure_bucket()
            try:
                self._put(key, data, content_type)
            except (ClientError, BotoCoreError) as retry_error:
                raise self._unavailable("store a blob", retry_error) from None
        except BotoCoreError as error:
            raise self._unavailable("store a blob", error) from None

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=check_key(key))
            body: bytes = response["Body"].read()
        except ClientError as error:
            if _error_code(error) in _MISSING_KEY_CODES:
                return None
            raise self._unavailable("read a blob", error) from None
        except BotoCoreError as error:
            raise self._unavailable("read a blob", error) from None
        return body

    def _unavailable(self, action: str, error: Exception) -> Unavailable:
        # botocore messages name the operation, bucket and status, never the credentials.
        logger.warning("blob storage: could not %s in bucket %s: %s", action, self.bucket, error)
        return Unavailable(f"blob storage is unavailable: could not {action}")
