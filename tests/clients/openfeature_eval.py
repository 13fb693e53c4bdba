"""Evaluates feature flags with OpenFeature's own Python SDK, as an application would, and
prints what it got as JSON: the tests' client that nobody at lever wrote.

Reads a plan as JSON on stdin:
  {"provider": "ofrep", "url": "http://127.0.0.1:PORT", "token": "...",
   "evaluations": [{"flag": "video", "type": "boolean", "default": false, "key": "alice"}, ...]}
or "provider": "flagd" with "file": "/path/flagd.json" (flagd's in-process provider, file mode).
Prints one JSON object per evaluation: flag, key, value, variant, reason, error.
"""

import json
import sys

from openfeature import api
from openfeature.evaluation_context import EvaluationContext


def provider(plan):
    if plan["provider"] == "ofrep":
        from openfeature.contrib.provider.ofrep import OFREPProvider

        token = plan["token"]
        return OFREPProvider(
            plan["url"], headers_factory=lambda: {"Authorization": f"Bearer {token}"}
        )
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    return FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=plan["file"]
    )


def main():
    plan = json.load(sys.stdin)
    # flagd's file resolver reads the file in the background: wait until it has.
    api.set_provider_and_wait(provider(plan))
    client = api.get_client()
    resolve = {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "integer": client.get_integer_details,
        "float": client.get_float_details,
        "object": client.get_object_details,
    }
    answers = []
    for e in plan["evaluations"]:
        context = EvaluationContext(targeting_key=e.get("key"))
        details = resolve[e["type"]](e["flag"], e["default"], context)
        answers.append(
            {
                "flag": e["flag"],
                "key": e.get("key"),
                "value": details.value,
                "variant": details.variant,
                "reason": getattr(details.reason, "value", details.reason),
                "error": details.error_code.value if details.error_code else None,
            }
        )
    api.shutdown()
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
