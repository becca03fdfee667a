"""Writes mutated requests for the C ABI fuzzer (tests/fuzz.c), one per line, as bytes C reads
without a JSON parser:

    python3 fuzz_cases.py bad_requests.json operations.json CASES SEED > fuzz_cases.tsv

`operations.json` is what `ms_operations` answers (the fuzzer prints it with --operations), so
every operation the core serves is fuzzed, new ones included. Seeds: the corpus's bodies of
each operation, and a valid body per operation; each case is one seed mutated by structure
(wrong types, huge numbers, NaN/Infinity, deep nesting, unknown and duplicate fields, empty and
enormous arrays, long strings, lone surrogates) and then, sometimes, by bytes (invalid UTF-8,
cut-off text). Line: operation, TAB, the body in hex (empty: no body, a NULL pointer).
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

# The fuzzer's service (tests/fuzz.c deploys it); management requests aim elsewhere, so a
# mutation never deletes or scales it under the fuzzer's feet.
SERVICE = "corpus/smol"
OTHER = "fuzz/other"

VALID: dict[str, Any] = {
    "chat.completions.create": {
        "model": SERVICE,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}],
        "max_tokens": 2,
        "temperature": 0.5,
        "stop": ["\n"],
        "seed": 1,
        "logit_bias": {"0": -1},
    },
    "embeddings.create": {"model": SERVICE, "input": ["hi", "there"]},
    "models.list": {},
    "models.retrieve": {"model": SERVICE},
    "services.deploy": {"name": "x", "access_name": OTHER, "model": "/nonexistent/model.gguf", "threads": 1},
    "services.list": {},
    "services.retrieve": {"access_name": SERVICE},
    "services.scale": {"access_name": OTHER, "instances": 2},
    "services.delete": {"access_name": OTHER, "confirm": "x"},
    "services.metrics": {"access_name": SERVICE},
}

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    2**64 + 1,
    1e308,
    -1e308,
    5e-324,
    "",
    "\ud800",  # a lone surrogate, written as \ud800 in the JSON text
    "\udfff",
    "x" * 100_000,
    "😀" * 1000,
    [],
    ["stop"] * 5000,
    {},
    {"unknown": 1},
    [[[[[]]]]],
]

# Tokens that are not JSON but look like numbers some parsers take.
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0x10", "01", "+1", ".5"]


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def mutate(rng: random.Random, body: Any) -> str:
    """One structural mutation, rendered as JSON text (possibly no longer valid JSON)."""
    choice = rng.randrange(10)
    if not isinstance(body, dict):
        body = {"value": body}
    body = json.loads(json.dumps(body))
    keys = list(body)
    key = rng.choice(keys) if keys and rng.random() < 0.8 else rng.choice(["unknown_field", "n", "stream"])
    if choice == 0:
        body[key] = rng.choice(ODD_VALUES)
    elif choice == 1:
        body.pop(key, None)
    elif choice == 2:
        marker = "__MARK__"
        body[key] = marker
        return json.dumps(body).replace(f'"{marker}"', rng.choice(NOT_JSON_NUMBERS))
    elif choice == 3:
        marker = "__MARK__"
        body[key] = marker
        return json.dumps(body).replace(f'"{marker}"', nested(rng.choice([10, 127, 128, 129, 1000, 100_000])))
    elif choice == 4:
        # A duplicate key, written twice in the text.
        text = json.dumps(body)
        return text[:-1] + ("," if body else "") + f'"{key}": {json.dumps(rng.choice(ODD_VALUES))}' + "}"
    elif choice == 5:
        return json.dumps(rng.choice([[], [body], "body", 1, None, True]))
    elif choice == 6 and isinstance(body.get("messages"), list):
        messages = body["messages"]
        if messages:
            i = rng.randrange(len(messages))
            messages[i] = rng.choice(
                [{}, {"role": "wizard", "content": "x"}, {"role": "user"}, {"role": "user", "content": [{}]},
                 {"role": "user", "content": [{"type": "text", "text": 1}]}, "user", None]
            )
        else:
            body["messages"] = [{"role": "user", "content": "x"}] * 4096
    elif choice == 7:
        body[key] = {"k": rng.choice(ODD_VALUES), "l": [rng.choice(ODD_VALUES)]}
    else:
        # Several mutations at once.
        for _ in range(3):
            body[rng.choice(keys or ["x"])] = rng.choice(ODD_VALUES)
    return json.dumps(body)


def byte_mutate(rng: random.Random, text: bytes) -> bytes:
    """Sometimes breaks the bytes themselves: invalid UTF-8, surrogates encoded raw, a cut."""
    roll = rng.random()
    if roll < 0.7 or not text:
        return text
    at = rng.randrange(len(text) + 1)
    if roll < 0.8:
        return text[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]) + text[at:]
    if roll < 0.9:
        return text[:at]
    return text.replace(b'"', b"'", 1)


def main() -> None:
    corpus_path, operations_path, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(corpus_path, encoding="utf-8") as f:
        corpus = json.load(f)
    with open(operations_path, encoding="utf-8") as f:
        operations: list[str] = json.load(f)
    seeds: dict[str, list[Any]] = {op: [VALID.get(op, {"model": SERVICE})] for op in operations}
    for case in corpus["cases"]:
        if case["op"] in seeds and "body" in case and case["body"] != "$service":
            seeds[case["op"]].append(case["body"])
    rng = random.Random(seed)
    # Every operation gets its valid seed unchanged once, then mutations in turn.
    lines = [f"{op}\t{json.dumps(VALID.get(op, {})).encode().hex()}" for op in operations]
    # A NULL body and an unknown operation name.
    lines += [f"{operations[0]}\t", f"chat.completions.created\t{b'{}'.hex()}"]
    while len(lines) < count:
        op = operations[len(lines) % len(operations)]
        text = mutate(rng, rng.choice(seeds[op])).encode("utf-8", "surrogatepass")
        body = byte_mutate(rng, text).replace(b"\x00", b"")
        lines.append(f"{op}\t{body.hex()}")
    sys.stdout.write("\n".join(lines[:count]) + "\n")


if __name__ == "__main__":
    main()
