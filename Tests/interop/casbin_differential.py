#!/usr/bin/env python3
"""Differential test: our engine (`streamhub-authz eval`) against pycasbin on random policies.

Usage: casbin_differential.py EVAL_BINARY EXAMPLES_DIR [--scenarios N] [--seed S]

For each scenario a model is picked (ACL, RBAC, RBAC with domains, keyMatch, deny,
priority), a random policy is written as CSV, random requests are decided by pycasbin and
by our engine, and the answers are compared. Prints one summary line as JSON and exits 1
on any disagreement (listing the first ones on stderr).
"""
import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile

import casbin

logging.disable(logging.CRITICAL)

USERS = ["alice", "bob", "carol", "dave", "erin"]
ROLES = ["admin", "editor", "viewer", "ops"]
OBJS = ["data1", "data2", "data3", "data4"]
ACTS = ["read", "write", "delete"]
DOMS = ["t1", "t2", "t3"]
PATHS = ["/alice_data/x", "/bob_data/y", "/pub/z", "/pub/a/b", "/admin", "/alice_data/"]
PATTERNS = ["/alice_data/*", "/bob_data/*", "/pub/*", "/admin", "/pub/a/*", "/*"]
METHODS = ["GET", "POST", "PUT"]


def acl(rng):
    rules = {("p", rng.choice(USERS), rng.choice(OBJS), rng.choice(ACTS)) for _ in range(rng.randint(1, 12))}
    reqs = [[rng.choice(USERS), rng.choice(OBJS), rng.choice(ACTS)] for _ in range(30)]
    return "basic_model.conf", sorted(rules), reqs


def rbac(rng):
    rules = {("p", rng.choice(USERS + ROLES), rng.choice(OBJS), rng.choice(ACTS)) for _ in range(rng.randint(1, 12))}
    rules |= {("g", rng.choice(USERS + ROLES), rng.choice(ROLES)) for _ in range(rng.randint(0, 8))}
    reqs = [[rng.choice(USERS + ROLES), rng.choice(OBJS), rng.choice(ACTS)] for _ in range(30)]
    return "rbac_model.conf", sorted(rules), reqs


def rbac_domains(rng):
    rules = {("p", rng.choice(ROLES + USERS), rng.choice(DOMS), rng.choice(OBJS), rng.choice(ACTS)) for _ in range(rng.randint(1, 12))}
    rules |= {("g", rng.choice(USERS), rng.choice(ROLES), rng.choice(DOMS)) for _ in range(rng.randint(0, 10))}
    reqs = [[rng.choice(USERS), rng.choice(DOMS), rng.choice(OBJS), rng.choice(ACTS)] for _ in range(30)]
    return "rbac_with_domains_model.conf", sorted(rules), reqs


def keymatch(rng):
    rules = {("p", rng.choice(USERS), rng.choice(PATTERNS), rng.choice(METHODS)) for _ in range(rng.randint(1, 10))}
    reqs = [[rng.choice(USERS), rng.choice(PATHS), rng.choice(METHODS)] for _ in range(30)]
    return "keymatch_model.conf", sorted(rules), reqs


def deny(rng):
    rules = {("p", rng.choice(USERS + ROLES), rng.choice(OBJS), rng.choice(ACTS), rng.choice(["allow", "deny"])) for _ in range(rng.randint(1, 12))}
    rules |= {("g", rng.choice(USERS), rng.choice(ROLES)) for _ in range(rng.randint(0, 6))}
    reqs = [[rng.choice(USERS), rng.choice(OBJS), rng.choice(ACTS)] for _ in range(30)]
    return "rbac_with_deny_model.conf", sorted(rules), reqs


def priority(rng):
    # File order is the priority: keep the generated order (no set, no sort).
    rules, seen = [], set()
    for _ in range(rng.randint(1, 12)):
        rule = ("p", rng.choice(USERS + ROLES), rng.choice(OBJS), rng.choice(ACTS), rng.choice(["allow", "deny"]))
        if rule[:4] not in seen:
            seen.add(rule[:4])
            rules.append(rule)
    rules += sorted({("g", rng.choice(USERS), rng.choice(ROLES)) for _ in range(rng.randint(0, 6))})
    reqs = [[rng.choice(USERS), rng.choice(OBJS), rng.choice(ACTS)] for _ in range(30)]
    return "priority_model.conf", rules, reqs


KINDS = [acl, rbac, rbac_domains, keymatch, deny, priority]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("eval_binary")
    parser.add_argument("examples")
    parser.add_argument("--scenarios", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    agree, disagree, per_kind = 0, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.scenarios):
            kind = KINDS[n % len(KINDS)]
            model, rules, reqs = kind(rng)
            policy = os.path.join(tmp, f"policy{n}.csv")
            with open(policy, "w") as f:
                f.write("\n".join(", ".join(r) for r in rules) + "\n")
            model_path = os.path.join(args.examples, model)
            enforcer = casbin.Enforcer(model_path, policy)
            expected = [bool(enforcer.enforce(*r)) for r in reqs]
            out = subprocess.run(
                [args.eval_binary, "eval", "--model", model_path, "--policy", policy],
                input="\n".join(json.dumps(r) for r in reqs) + "\n", capture_output=True, text=True, check=True,
            )
            answers = [json.loads(line) for line in out.stdout.splitlines()]
            for req, want, got in zip(reqs, expected, answers):
                ok = got.get("allowed") == want
                per_kind.setdefault(kind.__name__, [0, 0])[0 if ok else 1] += 1
                if ok:
                    agree += 1
                else:
                    disagree.append({"model": model, "policy": rules, "request": req, "pycasbin": want, "ours": got})
            if len(answers) != len(reqs):
                disagree.append({"model": model, "error": "answer count", "stderr": out.stderr})
    print(json.dumps({"agree": agree, "disagree": len(disagree), "by_model": per_kind}))
    for d in disagree[:10]:
        print(json.dumps(d), file=sys.stderr)
    sys.exit(1 if disagree else 0)


if __name__ == "__main__":
    main()
