"""After `terraform apply` of infra/ on moto (scripts/check-terraform.sh):
read back, through the AWS API, what was created and check it is what the
code expects.

- the raw bucket's CORS rule is infra/cors/raw-bucket.json, for the page
  origin and cors_allowed_origins;
- the raw bucket's policy refuses plain HTTP, and PutObject under uploads/
  without If-None-Match (create-only uploads);
- the notification sends s3:ObjectCreated:* for the whole bucket (uploads and
  drop-ins) to the events queue;
- the queue's visibility timeout is at least 6x the events function's
  timeout (AWS's advice for SQS event sources), and its redrive policy
  names the dead-letter queue;
- the queue keeps messages longer than its whole retry path, and the
  dead-letter queue at least as long; the DLQ alarm notifies the stack's
  SNS topic, which mails alarm_email;
- the table's key is one string partition key, id;
- both functions carry exactly the IMGPIPE_* variables the binary reads in
  AWS mode (plus IMGPIPE_HANDLER), but those kept in SSM Parameter Store,
  which are parameters under the path both name (the secrets SecureStrings);
- the events function is fed by the queue with partial batch failures.

Usage: python check_applied.py MOTO_URL STATE_JSON REPO_ROOT
"""
import json
import pathlib
import sys

import boto3

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def resources(state):
    out = {}
    for r in state["values"]["root_module"].get("resources", []):
        # for_each resources are keyed by their index (http, events, raw...).
        out.setdefault(r["type"], {})[r.get("index", r["name"])] = r["values"]
    return out


def aws_mode_variables(root):
    """(in the environment, in SSM parameters) as the binary reads them."""
    sys.path.insert(0, str(root / "scripts"))
    from code_settings import settings

    aws, _, in_ssm = settings(root)
    return (aws - in_ssm) | {"IMGPIPE_HANDLER"}, in_ssm


def main():
    endpoint, state_file, root = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    state = json.loads(pathlib.Path(state_file).read_text())
    res = resources(state)
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    lam = session.client("lambda", endpoint_url=endpoint)

    raw = res["aws_s3_bucket"]["raw"]["bucket"]
    rule = json.loads((root / "infra/cors/raw-bucket.json").read_text())
    cors = s3.get_bucket_cors(Bucket=raw)["CORSRules"]
    check(len(cors) == 1, f"one CORS rule on {raw}")
    got = cors[0]
    check(sorted(got["AllowedMethods"]) == sorted(rule["allowed_methods"]), f"CORS methods {got['AllowedMethods']}")
    check(sorted(got.get("AllowedHeaders", [])) == sorted(rule["allowed_headers"]), f"CORS headers {got.get('AllowedHeaders')}")
    check(sorted(got.get("ExposeHeaders", [])) == sorted(rule["expose_headers"]), f"CORS expose {got.get('ExposeHeaders')}")
    check(got.get("MaxAgeSeconds") == rule["max_age_seconds"], f"CORS max age {got.get('MaxAgeSeconds')}")
    check({"https://page.example", "https://app.example"} <= set(got["AllowedOrigins"]),
          f"CORS origins {got['AllowedOrigins']} hold the page's and cors_allowed_origins")

    policy = json.loads(s3.get_bucket_policy(Bucket=raw)["Policy"])
    by_sid = {st.get("Sid"): st for st in policy.get("Statement", [])}
    tls = by_sid.get("DenyInsecureTransport", {})
    check(tls.get("Effect") == "Deny" and tls.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}},
          "the raw bucket refuses plain HTTP")
    create_only = by_sid.get("UploadsAreCreateOnly", {})
    check(create_only.get("Effect") == "Deny" and create_only.get("Action") == "s3:PutObject"
          and create_only.get("Resource") == f"arn:aws:s3:::{raw}/uploads/*"
          and create_only.get("Condition") == {"Null": {"s3:if-none-match": "true"}},
          f"the raw bucket denies PutObject under uploads/ without If-None-Match: {create_only}")

    queue_url = res["aws_sqs_queue"]["events"]["url"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = res["aws_sqs_queue"]["dlq"]["arn"]
    notes = s3.get_bucket_notification_configuration(Bucket=raw).get("QueueConfigurations", [])
    check(len(notes) == 1 and notes[0]["QueueArn"] == attrs["QueueArn"], "the raw bucket notifies the events queue")
    if notes:
        check(notes[0]["Events"] == ["s3:ObjectCreated:*"], f"notification events {notes[0]['Events']}")
        rules = notes[0].get("Filter", {}).get("Key", {}).get("FilterRules", [])
        check(rules == [], f"the notification covers the whole bucket (drop-ins under any key), has filter {rules}")

    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    by_handler = {}
    for name, f in functions.items():
        env = lam.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
        if env.get("IMGPIPE_HANDLER") and name in {v["function_name"] for v in res["aws_lambda_function"].values()}:
            by_handler[env["IMGPIPE_HANDLER"]] = (f, env)
    check(set(by_handler) == {"http", "events"}, f"two functions, http and events: {sorted(by_handler)}")
    want, in_ssm = aws_mode_variables(root)
    for handler, (f, env) in sorted(by_handler.items()):
        names = {k for k in env if k.startswith("IMGPIPE_")}
        check(names == want, f"{handler}: IMGPIPE_* variables are those the binary reads"
              + ("" if names == want else f" (missing {sorted(want - names)}, extra {sorted(names - want)})"))
        check(env.get("IMGPIPE_BACKEND") == "aws", f"{handler}: IMGPIPE_BACKEND=aws")
    if "events" in by_handler:
        timeout = by_handler["events"][0]["Timeout"]
        visibility = int(attrs["VisibilityTimeout"])
        check(visibility >= 6 * timeout, f"queue visibility {visibility} s >= 6 x function timeout {timeout} s")
        mappings = lam.list_event_source_mappings(FunctionName=by_handler["events"][0]["FunctionArn"])["EventSourceMappings"]
        check(len(mappings) == 1 and mappings[0]["EventSourceArn"] == attrs["QueueArn"], "the events function is fed by the queue")
        if mappings:
            check(mappings[0].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], "partial batch failures reported")
    retention = int(attrs["MessageRetentionPeriod"])
    dlq_attrs = sqs.get_queue_attributes(QueueUrl=res["aws_sqs_queue"]["dlq"]["url"], AttributeNames=["All"])["Attributes"]
    if "events" in by_handler:
        longest = int(json.loads(attrs.get("RedrivePolicy", "{}")).get("maxReceiveCount", 0)) * int(attrs["VisibilityTimeout"])
        check(retention > longest, f"the queue keeps messages {retention} s, longer than its retry path {longest} s")
    check(int(dlq_attrs["MessageRetentionPeriod"]) >= retention,
          f"the dead-letter queue keeps messages at least as long ({dlq_attrs['MessageRetentionPeriod']} s)")

    # The DLQ alarm notifies the stack's SNS topic, which mails alarm_email.
    cw = session.client("cloudwatch", endpoint_url=endpoint)
    sns = session.client("sns", endpoint_url=endpoint)
    topic = res["aws_sns_topic"]["alarms"]["arn"]
    alarm = res["aws_cloudwatch_metric_alarm"]["dlq_not_empty"]["alarm_name"]
    got = cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    check(len(got) == 1 and topic in got[0]["AlarmActions"], f"the DLQ alarm notifies {topic}")
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    check([(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "oncall@example.com")],
          f"the alarm topic mails alarm_email: {subs}")

    redrive = json.loads(attrs.get("RedrivePolicy", "{}"))
    check(redrive.get("deadLetterTargetArn") == dlq_arn, f"redrive to the dead-letter queue {redrive}")
    check(int(redrive.get("maxReceiveCount", 0)) >= 1, f"maxReceiveCount {redrive.get('maxReceiveCount')}")

    # The secrets and the CDN's URL are SSM parameters under the path the
    # functions are given, the secrets encrypted.
    ssm = session.client("ssm", endpoint_url=endpoint)
    paths = {env.get("IMGPIPE_PARAMETERS") for _, env in by_handler.values()}
    check(len(paths) == 1 and None not in paths, f"both functions name one parameter path: {paths}")
    path = paths.pop() if len(paths) == 1 else ""
    params = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path or "/none", WithDecryption=False):
        params.update({p["Name"][len(path):]: p for p in page["Parameters"]})
    check(set(params) == in_ssm, f"parameters under {path}: {sorted(params)}, want {sorted(in_ssm)}")
    for name in ("IMGPIPE_UPLOAD_TOKENS", "IMGPIPE_SIGNING_KEY", "IMGPIPE_ADMIN_TOKENS"):
        if name in params:
            check(params[name]["Type"] == "SecureString", f"{name} is a SecureString")
    if "IMGPIPE_PUBLIC_BASE_URL" in params:
        check(params["IMGPIPE_PUBLIC_BASE_URL"]["Value"].startswith("https://"), "the public base URL is absolute")

    table = res["aws_dynamodb_table"]["meta"]["name"]
    desc = ddb.describe_table(TableName=table)["Table"]
    check(desc["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}], f"table key {desc['KeySchema']}")
    check(desc["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}],
          f"table attributes {desc['AttributeDefinitions']}")

    if failures:
        print(f"terraform on moto: {len(failures)} checks failed")
        sys.exit(1)
    print("terraform on moto: the applied stack is what the code expects")


if __name__ == "__main__":
    main()
