"""The served OpenAPI document against the OpenAPI 3.1 validator, and schemathesis against the
live system.

Usage: openapi_check.py GATEWAY_URL GLOBAL_TOKEN CLUSTER_TOKEN REPORT_DIR [MAX_EXAMPLES]

1. Fetches GATEWAY_URL/api/v1/openapi.json and validates it with openapi-spec-validator (3.1).
2. Runs schemathesis (same virtualenv) on every operation with the global token and the cluster
   token: phases examples, coverage and fuzzing, at most MAX_EXAMPLES (default 8) generated cases
   per operation, fixed seed. Checks: no 5xx, every status documented, every response body valid
   against its schema. The JUnit report goes to REPORT_DIR.
Prints one JSON line {validator, operations, schemathesis}; exits 1 on any failure.
"""
import json
import os
import subprocess
import sys
import urllib.request

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError


def main():
    base, token, cluster, reports = sys.argv[1:5]
    examples = sys.argv[5] if len(sys.argv) > 5 else "8"
    with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10) as response:
        document = json.load(response)
    result = {"validator": "ok", "operations": sum(len(v) for v in document["paths"].values())}
    try:
        validate(document)
    except OpenAPIValidationError as error:
        result["validator"] = str(error)[:2000]
    os.makedirs(reports, exist_ok=True)
    schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
    run = subprocess.run(
        [schemathesis, "run", base + "/api/v1/openapi.json", "--url", base,
         "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
         "--phases", "examples,coverage,fuzzing", "--max-examples", examples, "--seed", "20261127",
         "--workers", "2", "--generation-database", "none", "--no-color", "--request-timeout", "15",
         "--header", "Authorization: Bearer " + token, "--header", "X-Cluster-Token: " + cluster,
         "--report", "junit", "--report-dir", reports],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, SCHEMATHESIS_HOOKS=""))
    result["schemathesis"] = run.returncode
    with open(os.path.join(reports, "schemathesis.txt"), "w") as f:
        f.write(run.stdout)
    print(json.dumps(result))
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-12000:])
    return 0 if result["validator"] == "ok" and run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
