"""Offline checks of infra/ (no Terraform binary needed):

1. every .tf file parses (python-hcl2);
2. every IMGPIPE_* variable the binary reads in AWS mode is set on both
   Lambda functions, and IMGPIPE_HANDLER is http on one and events on the
   other;
3. the IAM permissions in infra/iam.tf (local.permissions, the one list)
   cover exactly the S3, DynamoDB and SQS calls in src/, and the policies
   are built from that list;
4. /img/* answers through the CDN carry Vary: Accept while its cache key
   stays the path alone;
5. the cost tables infra/README.md quotes are those in BENCHMARKS.md.

Usage: python check_infra.py REPO_ROOT   (run in a venv with python-hcl2)
"""

import pathlib
import re
import sys

import hcl2

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
INFRA = ROOT / "infra"
failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


# 1. Parse.
docs = {}
for tf in sorted(INFRA.glob("*.tf")):
    try:
        with tf.open() as f:
            docs[tf.name] = hcl2.load(f)
    except Exception as e:  # noqa: BLE001 - report any parser error
        fail(f"{tf.name} does not parse: {e}")
print(f"parsed {len(docs)} .tf files")
if not docs:
    fail("no .tf files in infra/")


def blocks(kind):
    for doc in docs.values():
        for block in doc.get(kind, []):
            yield block


def locals_():
    merged = {}
    for block in blocks("locals"):
        merged.update({strip(k): v for k, v in block.items()})
    return merged


def strip(v):
    return v.strip('"') if isinstance(v, str) else v


# 2. Environment.
sys.path.insert(0, str(ROOT / "scripts"))
from code_settings import settings  # noqa: E402

src = {p: p.read_text() for p in (ROOT / "src").rglob("*.rs")}
aws_vars, local_only, parameter_vars = settings(ROOT)
read = aws_vars | local_only
# Variables infra/ keeps in SSM Parameter Store under IMGPIPE_PARAMETERS
# (ssm.tf) rather than in the functions' environment.
ssm_text = (INFRA / "ssm.tf").read_text() if (INFRA / "ssm.tf").exists() else ""
in_ssm = {v for v in parameter_vars if re.search(r"\b" + v + r"\b", ssm_text)}
for v in sorted(parameter_vars - in_ssm):
    fail(f"{v} may come from SSM but infra/ssm.tf writes no parameter for it")
env = {strip(k) for k in locals_().get("environment", {})}
for v in sorted(env & in_ssm):
    fail(f"{v} is in SSM (ssm.tf): it must not be in the functions' environment too")
if in_ssm and "IMGPIPE_PARAMETERS" not in env:
    fail("the functions need IMGPIPE_PARAMETERS to find the SSM parameters")
env |= in_ssm
functions = [{strip(k): v for k, v in r.items()} for r in blocks("resource")]
functions = [r["aws_lambda_function"] for r in functions if "aws_lambda_function" in r]
if not functions:
    fail("no aws_lambda_function")
for r in functions:
    for name, body in r.items():
        merged = str(body.get("environment", [{}])[0].get("variables", ""))
        if "local.environment" not in merged or "IMGPIPE_HANDLER" not in merged:
            fail(f"aws_lambda_function.{name} must set merge(local.environment, {{ IMGPIPE_HANDLER = ... }})")
given = env | {"IMGPIPE_HANDLER"}
for v in sorted(aws_vars - given):
    fail(f"{v} is read by the binary in AWS mode but not set on the Lambda functions")
for v in sorted(given - read):
    fail(f"{v} is set on the Lambda functions but the binary never reads it")
permissions = locals_().get("permissions", {})
if set(permissions) != {"http", "events"}:
    fail(f"local.permissions must name exactly http and events, got {sorted(permissions)}")
print(f"environment: {len(aws_vars)} AWS-mode variables, all set on both functions ({len(in_ssm)} of them in SSM)"
      if not failures else "environment: see failures")

# 3. IAM. Each SDK operation the code calls, as the IAM action it needs.
ACTIONS = {
    ("s3", "get_object"): ["s3:GetObject"],
    ("s3", "head_object"): ["s3:GetObject"],
    ("s3", "put_object"): ["s3:PutObject", "s3:PutObjectTagging"],  # renders are tagged
    ("s3", "head_bucket"): ["s3:ListBucket"],
    ("s3", "delete_object"): ["s3:DeleteObject"],  # DELETE /images/<id>
    ("s3", "list_objects_v2"): ["s3:ListBucket"],  # imgpipe import s3://...
    ("dynamodb", "get_item"): ["dynamodb:GetItem"],
    ("dynamodb", "put_item"): ["dynamodb:PutItem"],
    # A transaction's Put is authorized as PutItem (no action of its own).
    ("dynamodb", "transact_write_items"): ["dynamodb:PutItem"],
    ("dynamodb", "describe_table"): ["dynamodb:DescribeTable"],
    ("dynamodb", "scan"): ["dynamodb:Scan"],
    ("dynamodb", "delete_item"): ["dynamodb:DeleteItem"],
    ("sqs", "receive_message"): ["sqs:ReceiveMessage"],
    ("sqs", "delete_message"): ["sqs:DeleteMessage"],
    ("ssm", "get_parameters_by_path"): ["ssm:GetParametersByPath"],
    ("cloudfront", "create_invalidation"): ["cloudfront:CreateInvalidation"],
}
# Calls no Lambda function makes: the scan behind MetaStore::pending and the
# delete behind MetaStore::delete_pending serve only the local work queue
# (its resume pass and the expiry of abandoned uploads).
NOT_ON_LAMBDA = {"dynamodb:Scan", "dynamodb:DeleteItem"}
# Calls Lambda's SQS event source mapping makes with the events role.
EVENT_SOURCE = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
FILE_SERVICE = {"store/s3.rs": "s3", "meta/dynamo.rs": "dynamodb", "aws/cloudfront.rs": "cloudfront"}

calls = set()
for path, text in src.items():
    rel = str(path.relative_to(ROOT / "src"))
    for m in re.finditer(r"self\s*\.\s*client\s*\.\s*(\w+)\s*\(", text):
        service = FILE_SERVICE.get(rel)
        if service is None:
            fail(f"{rel}: an SDK call on self.client in a file of unknown service")
        else:
            calls.add((service, m.group(1)))
    for m in re.finditer(r"clients\s*\.\s*(s3|sqs|dynamodb|ssm)\s*\.\s*(\w+)\s*\(", text):
        if m.group(2) != "clone":
            calls.add((m.group(1), m.group(2)))
needed = set()
for call in sorted(calls):
    if call not in ACTIONS:
        fail(f"the code calls {call[0]}.{call[1]}: add its IAM action to scripts/check_infra.py and infra/iam.tf")
    else:
        needed |= set(ACTIONS[call])
granted = set()
for fn in permissions.values():
    for actions in fn.values():
        granted |= {strip(a) for a in actions}
for a in sorted((needed - NOT_ON_LAMBDA) - granted):
    fail(f"{a} is needed by the code but granted to no function")
for a in sorted(granted - needed - EVENT_SOURCE):
    fail(f"{a} is granted but no code calls it")
events_queue = {strip(a) for a in permissions.get("events", {}).get("queue", [])}
if events_queue != EVENT_SOURCE:
    fail(f"the events role needs exactly {sorted(EVENT_SOURCE)} on the queue, has {sorted(events_queue)}")
policy_text = (INFRA / "iam.tf").read_text()
if "for_each = local.permissions" not in policy_text or "each.value.raw" not in policy_text:
    fail("infra/iam.tf policies must be built from local.permissions")
print(f"iam: {len(calls)} SDK operations in src/ -> {len(needed)} actions; granted {len(granted)}")

# 4. The CDN: `auto` answers carry Vary: Accept, while the cache key of
# /img/* stays the path alone (the function has already turned Accept into
# the format in the path).
resources = {}
for block in blocks("resource"):
    for kind, named in block.items():
        for name, body in named.items():
            resources[(strip(kind), strip(name))] = body
cdn = resources.get(("aws_cloudfront_distribution", "cdn"), {})
img = [b for b in cdn.get("ordered_cache_behavior", []) if strip(b.get("path_pattern")) == "/img/*"]
if len(img) != 1:
    fail("the distribution needs one /img/* behavior")
else:
    policy = re.search(r"aws_cloudfront_response_headers_policy\.(\w+)\.id", str(img[0].get("response_headers_policy_id")))
    cache = re.search(r"aws_cloudfront_cache_policy\.(\w+)\.id", str(img[0].get("cache_policy_id")))
    headers = resources.get(("aws_cloudfront_response_headers_policy", policy.group(1) if policy else ""), {})
    vary = [i for c in headers.get("custom_headers_config", []) for i in c.get("items", [])
            if strip(i.get("header", "")).lower() == "vary"]
    if not vary or "accept" not in strip(vary[0].get("value", "")).lower() or not vary[0].get("override"):
        fail("/img/* answers must carry Vary: Accept (response headers policy, override = true)")
    key = resources.get(("aws_cloudfront_cache_policy", cache.group(1) if cache else ""), {})
    params = key.get("parameters_in_cache_key_and_forwarded_to_origin", [{}])[0]
    behaviors = [strip(params.get(k, [{}])[0].get(b, ""))
                 for k, b in (("headers_config", "header_behavior"), ("cookies_config", "cookie_behavior"),
                              ("query_strings_config", "query_string_behavior"))]
    if behaviors != ["none", "none", "none"]:
        fail(f"the /img/* cache key must be the path alone (headers, cookies, query: none), got {behaviors}")
    if not failures:
        print("cdn: /img/* answers vary on Accept; its cache key is the path alone")

# 5. The cost tables quoted in infra/README.md are BENCHMARKS.md's.
def cost_tables(text):
    return re.findall(r"^(\| line item \|.*?)(?:\n\n|\Z)", text, re.S | re.M)


measured = cost_tables((ROOT / "BENCHMARKS.md").read_text())
quoted = cost_tables((INFRA / "README.md").read_text())
if len(measured) != 2 or quoted != measured:
    fail("infra/README.md must quote BENCHMARKS.md's two cost tables as they are (per upload, per miss)")
else:
    print("costs: infra/README.md quotes BENCHMARKS.md's cost tables")

if failures:
    print(f"{len(failures)} infra check(s) failed")
    sys.exit(1)
print("infra checks passed")
