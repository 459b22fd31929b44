"""Create, on the moto server, what the AWS deployment in infra/ creates for
the upload flow: the raw and processed buckets, the table, the queue and the
raw bucket's S3 -> SQS notification, and the raw bucket's CORS rule read from
infra/cors/raw-bucket.json (the file the .tf reads), allowing the given
origins. Prints the names as one JSON object.

Usage: python aws_stack.py ENDPOINT ORIGIN [ORIGIN...]
"""
import json
import pathlib
import sys
import uuid

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main():
    endpoint, origins = sys.argv[1], sys.argv[2:]
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    s3 = session.client("s3", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    suffix = uuid.uuid4().hex[:12]
    raw, processed, table = f"raw-{suffix}", f"out-{suffix}", f"meta-{suffix}"
    s3.create_bucket(Bucket=raw)
    s3.create_bucket(Bucket=processed)
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = sqs.create_queue(QueueName=f"events-{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=raw,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )
    rule = json.loads((ROOT / "infra" / "cors" / "raw-bucket.json").read_text())
    s3.put_bucket_cors(
        Bucket=raw,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": rule["allowed_methods"],
                    "AllowedOrigins": origins,
                    "AllowedHeaders": rule["allowed_headers"],
                    "ExposeHeaders": rule["expose_headers"],
                    "MaxAgeSeconds": rule["max_age_seconds"],
                }
            ]
        },
    )
    print(json.dumps({"raw": raw, "processed": processed, "table": table, "queue_url": queue_url}))


if __name__ == "__main__":
    main()
